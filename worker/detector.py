"""Face detection with MTCNN (its weights ship in the wheel), built once per process.

Detection runs on a copy of the photo whose longer side is at most ``max_side`` pixels, so
memory and time stay bounded on a 24-megapixel photo; boxes come back in file pixels.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np

from facelabel.imaging import Box, Decoded

_lock = threading.Lock()
_detector = None


@dataclasses.dataclass(frozen=True)
class Detection:
    box: Box  # file pixels, upright
    confidence: float


def _mtcnn():
    global _detector
    if _detector is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from mtcnn import MTCNN

        _detector = MTCNN(device="CPU:0" if not _gpu_available() else "GPU:0")
    return _detector


def _gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def warm_up() -> None:
    """Build the detector and trace its graphs now (the first call takes seconds)."""
    with _lock:
        _mtcnn().detect_faces(np.zeros((64, 64, 3), np.uint8))


def detect_faces(
    decoded: Decoded, *, max_side: int, min_face: int, min_confidence: float
) -> tuple[list[Detection], int]:
    """Faces in ``decoded``, largest first, and how many were dropped as too small or unsure."""
    image = decoded.image
    scale = min(1.0, max_side / max(image.size))
    small = image if scale == 1.0 else image.resize((round(image.width * scale), round(image.height * scale)))
    with _lock:  # one detector per process; its TensorFlow graph already uses every core
        found = _mtcnn().detect_faces(np.asarray(small), min_face_size=max(12, round(min_face * scale)))
    to_file = decoded.width / small.width, decoded.height / small.height
    kept, dropped = [], 0
    for face in found:
        x, y, w, h = face["box"]
        box = Box(round(x * to_file[0]), round(y * to_file[1]), round(w * to_file[0]), round(h * to_file[1]))
        if face["confidence"] < min_confidence or min(box.w, box.h) < min_face:
            dropped += 1
            continue
        kept.append(Detection(box, float(face["confidence"])))
    kept.sort(key=lambda d: d.box.area, reverse=True)
    return kept, dropped
