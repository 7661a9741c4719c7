"""BlazeFace full range (MediaPipe) on LiteRT: the photo letterboxed to 192×192, one SSD layer
of 48×48 anchors; the anchor decode and MediaPipe's weighted non-maximum suppression are
written here in NumPy (the config: mediapipe's face_detection_full_range_common.pbtxt).

Its boxes are square and tighter than MTCNN's, its scores lower, and it gives a mouth centre
instead of mouth corners: its own margins, template and cut, all re-fit here.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
from PIL import Image

from facelabel.vision.detectors import RawFace, model_file
from facelabel.vision.litert import interpreter

FILE = "face_detection_full_range.tflite"
SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
INPUT = 192
GRID = 48  # stride 4, one anchor per cell (interpolated_scale_aspect_ratio 0)
KEYPOINTS = 6  # image-left eye, image-right eye, nose, mouth centre, two ear tragions
SCORE_CLIP = 100.0
NMS_IOU = 0.3


def _anchors() -> np.ndarray:
    centres = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class BlazeFace:
    name = "blazeface"
    # research/fit_framing.py --detector blazeface (2,000 CelebA aligned images)
    margins = (0.360, 0.753, 0.370, 0.365)
    template = np.float32([[69.3, 112.5], [108.5, 113.1], [87.9, 156.7]])  # eyes, mouth centre
    floor = 0.5

    def __init__(self):
        self._path = model_file(FILE, SHA256)
        self._anchors = _anchors()
        self._local = threading.local()  # an interpreter is not thread-safe: one per thread

    def _run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        runner = getattr(self._local, "runner", None)
        if runner is None:
            model = interpreter(self._path, threads=1)
            outputs = {tuple(d["shape"][1:]): d["index"] for d in model.get_output_details()}
            runner = self._local.runner = (
                model,
                model.get_input_details()[0]["index"],
                outputs[(GRID * GRID, 4 + 2 * KEYPOINTS)],
                outputs[(GRID * GRID, 1)],
            )
        model, source, regressors, classifier = runner
        model.set_tensor(source, tensor)
        model.invoke()
        return model.get_tensor(regressors)[0], model.get_tensor(classifier)[0, :, 0]

    def detect(self, images: Sequence[np.ndarray], *, min_size: int, batch: int) -> list[list[RawFace]]:
        found = []
        for rgb in images:
            tensor, undo = _letterbox(rgb)
            scores, points = self._decode(*self._run(tensor))
            scores, points = _weighted_nms(scores, points)
            found.append(_faces(scores, points, undo))
        return found

    def _decode(self, regressors: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and points (n, 8, 2) in [0, 1]: box corners, then the keypoints."""
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -SCORE_CLIP, SCORE_CLIP)))
        keep = np.flatnonzero(scores >= self.floor)
        raw = regressors[keep].reshape(-1, 2 + KEYPOINTS, 2) / np.float32(INPUT)
        anchor = self._anchors[keep][:, None, :]
        centre, half = raw[:, 0:1] + anchor, raw[:, 1:2] / 2
        return scores[keep], np.concatenate([centre - half, centre + half, raw[:, 2:] + anchor], axis=1)


def _letterbox(rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, int, int]]:
    """The model's input (1×192×192×3 in [-1, 1], the photo centred) and how to undo it."""
    height, width = rgb.shape[:2]
    scale = INPUT / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = Image.fromarray(rgb)
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    pad_x, pad_y = (INPUT - new_w) // 2, (INPUT - new_h) // 2
    canvas = np.zeros((1, INPUT, INPUT, 3), np.float32)
    canvas[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = np.asarray(image, dtype=np.float32)
    return canvas / 127.5 - 1.0, (new_w / width, pad_x, pad_y)


def _weighted_nms(scores: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster (IoU > 0.3 with its best) becomes the score-weighted mean of its boxes
    and keypoints, with the best score (MediaPipe's WEIGHTED suppression)."""
    order = np.argsort(-scores, kind="stable")
    scores, points = scores[order], points[order]
    x0, y0, x1, y1 = points[:, 0, 0], points[:, 0, 1], points[:, 1, 0], points[:, 1, 1]
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    alive = np.ones(len(scores), bool)
    kept_scores, kept_points = [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        inter = np.maximum(np.minimum(x1[i], x1) - np.maximum(x0[i], x0), 0) * np.maximum(
            np.minimum(y1[i], y1) - np.maximum(y0[i], y0), 0
        )
        members = alive & (inter / np.maximum(areas[i] + areas - inter, 1e-12) > NMS_IOU)
        members[i] = True
        weights = scores[members]
        kept_points.append((points[members] * weights[:, None, None]).sum(0) / weights.sum())
        kept_scores.append(scores[i])
        alive &= ~members
    return np.array(kept_scores, np.float32), np.array(kept_points, np.float32).reshape(-1, 2 + KEYPOINTS, 2)


def _faces(scores: np.ndarray, points: np.ndarray, undo: tuple[float, int, int]) -> list[RawFace]:
    scale, pad_x, pad_y = undo
    pixels = (points * INPUT - np.float32([pad_x, pad_y])) / np.float32(scale)
    return [
        RawFace(
            (float(p[0, 0]), float(p[0, 1]), float(p[1, 0] - p[0, 0]), float(p[1, 1] - p[0, 1])),
            float(s),
            p[[2, 3, 5]],
        )
        for s, p in zip(scores, pixels)
    ]


BACKEND = BlazeFace
