"""Face detection with MTCNN (its weights ship in the wheel), built once per process.

Photos are detected in batches: each is scaled down so its longer side is at most
``max_side``; photos of similar shape go into one batch, pasted top-left on a canvas the
size of the batch's largest, so the padding MTCNN computes on stays small. Boxes come back
in file pixels.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Sequence

import numpy as np
from PIL import Image

from facelabel.tensorflow_import import load_tensorflow
from facelabel.vision.imaging import Box, Decoded

_lock = threading.Lock()
_detector = None


@dataclasses.dataclass(frozen=True)
class Detection:
    box: Box  # file pixels, upright
    confidence: float


def _mtcnn():
    global _detector
    if _detector is None:
        gpu = bool(load_tensorflow().config.list_physical_devices("GPU"))
        from mtcnn import MTCNN

        _detector = MTCNN(device="GPU:0" if gpu else "CPU:0")
    return _detector


def warm_up() -> None:
    """Build the detector and trace its graphs now (the first call takes seconds)."""
    with _lock:
        _mtcnn().detect_faces(np.zeros((64, 64, 3), np.uint8))


def detect_faces(
    photos: Sequence[Decoded], *, max_side: int, min_face: int, min_confidence: float, batch: int = 8
) -> list[tuple[list[Detection], int]]:
    """For each photo, its faces (largest first) and how many were dropped as too small or unsure."""
    scaled = [_scaled(photo.image, max_side) for photo in photos]
    by_shape = sorted(range(len(photos)), key=lambda i: (scaled[i].height, scaled[i].width))
    found: list[list[dict]] = [[] for _ in photos]
    for start in range(0, len(by_shape), batch):
        group = by_shape[start : start + batch]
        height = max(scaled[i].height for i in group)
        width = max(scaled[i].width for i in group)
        canvases = [_on_canvas(scaled[i], height, width) for i in group]
        smallest = min(min_face * scaled[i].width / photos[i].width for i in group)
        with _lock:  # one detector per process; its TensorFlow graph already uses every core
            if len(canvases) == 1:  # MTCNN's single-image path: no batch padding
                results = [_mtcnn().detect_faces(canvases[0], min_face_size=max(12, round(smallest)))]
            else:
                results = _mtcnn().detect_faces(canvases, min_face_size=max(12, round(smallest)))
        for i, faces in zip(group, results):
            found[i] = faces
    return [
        _kept(faces, photo, image, min_face, min_confidence)
        for faces, photo, image in zip(found, photos, scaled)
    ]


def _scaled(image: Image.Image, max_side: int) -> Image.Image:
    scale = min(1.0, max_side / max(image.size))
    if scale == 1.0:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))


def _on_canvas(image: Image.Image, height: int, width: int) -> np.ndarray:
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[: image.height, : image.width] = np.asarray(image)
    return canvas


def _kept(
    faces: list[dict], photo: Decoded, image: Image.Image, min_face: int, min_confidence: float
) -> tuple[list[Detection], int]:
    to_file = photo.width / image.width, photo.height / image.height
    kept, dropped = [], 0
    for face in faces:
        x, y, w, h = face["box"]
        w, h = min(w, image.width - x), min(h, image.height - y)  # the canvas padding is not photo
        if w <= 0 or h <= 0:
            continue
        box = Box(round(x * to_file[0]), round(y * to_file[1]), round(w * to_file[0]), round(h * to_file[1]))
        if face["confidence"] < min_confidence or min(box.w, box.h) < min_face:
            dropped += 1
            continue
        kept.append(Detection(box, float(face["confidence"])))
    kept.sort(key=lambda d: d.box.area, reverse=True)
    return kept, dropped
