"""MTCNN (the ``mtcnn`` package, its weights in the wheel) on TensorFlow: the most accurate
landmarks of the three, and the slowest by far on CPUs. Several photos per call are pasted
top-left on canvases of the batch's largest shape (photos sorted by shape first)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from facelabel.quiet import load_tensorflow
from facelabel.vision.detectors import RawFace


class Mtcnn:
    name = "mtcnn"
    # research/fit_framing.py --detector mtcnn (2,000 CelebA aligned images)
    margins = (0.578, 0.583, 0.575, 0.325)
    # image-left eye, image-right eye, image-left mouth corner, image-right mouth corner
    template = np.float32([[69.0, 111.0], [108.0, 111.0], [71.0, 152.0], [106.0, 152.0]])

    def __init__(self):
        gpu = bool(load_tensorflow().config.list_physical_devices("GPU"))
        from mtcnn import MTCNN

        self._mtcnn = MTCNN(device="GPU:0" if gpu else "CPU:0")

    def detect(self, images: Sequence[np.ndarray], *, min_size: int, batch: int) -> list[list[RawFace]]:
        by_shape = sorted(range(len(images)), key=lambda i: images[i].shape[:2])
        found: list[list[RawFace]] = [[] for _ in images]
        for start in range(0, len(by_shape), batch):
            group = by_shape[start : start + batch]
            if len(group) == 1:  # MTCNN's single-image path: no batch padding
                results = [self._mtcnn.detect_faces(images[group[0]], min_face_size=max(12, min_size))]
            else:
                height = max(images[i].shape[0] for i in group)
                width = max(images[i].shape[1] for i in group)
                canvases = [_on_canvas(images[i], height, width) for i in group]
                results = self._mtcnn.detect_faces(canvases, min_face_size=max(12, min_size))
            for i, faces in zip(group, results):
                found[i] = [_raw(face, images[i].shape) for face in faces]
        return found


def _on_canvas(image: np.ndarray, height: int, width: int) -> np.ndarray:
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    return canvas


def _raw(face: dict, shape: tuple[int, ...]) -> RawFace:
    x, y, w, h = face["box"]
    w, h = min(w, shape[1] - x), min(h, shape[0] - y)  # the canvas padding is not photo
    marks = face["keypoints"]  # its "left" points are the image-left ones
    points = np.float32([marks["left_eye"], marks["right_eye"], marks["mouth_left"], marks["mouth_right"]])
    return RawFace((float(x), float(y), float(w), float(h)), float(face["confidence"]), points)


BACKEND = Mtcnn
