"""Face detection in photos, whichever backend ``FACELABEL_DETECTOR`` names (detectors/).

Each photo is scaled down so its longer side is at most ``max_side`` (the backend's own
default when unset); boxes and alignment points come back in file pixels, largest face
first. One detection at a time per process: every backend already uses the cores it has.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Sequence

import numpy as np
from PIL import Image

from facelabel.vision.detectors import DEFAULTS, RawFace, get_backend
from facelabel.vision.imaging import Box, Decoded

_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Detection:
    box: Box  # file pixels, upright, clipped to the photo
    confidence: float
    points: np.ndarray  # (k, 2) alignment points in file pixels, in the backend's template order
    extent: tuple[float, float, float, float]  # the detector's own box (x, y, w, h), unclipped


def warm_up(detector: str) -> None:
    """Build the detector and run it once now (the first call can take seconds)."""
    backend = get_backend(detector)
    with _lock:
        backend.detect([np.zeros((64, 64, 3), np.uint8)], min_size=12, batch=1)


def detect_faces(
    photos: Sequence[Decoded],
    *,
    detector: str,
    max_side: int | None,
    min_face: int,
    min_confidence: float | None,
    batch: int = 1,
) -> list[tuple[list[Detection], int]]:
    """For each photo, its faces (largest first) and how many were dropped as too small or unsure."""
    backend, defaults = get_backend(detector), DEFAULTS[detector]
    scaled = [_scaled(photo.image, max_side or defaults.max_side) for photo in photos]
    smallest = min((min_face * image.width / photo.width for image, photo in zip(scaled, photos)), default=12)
    with _lock:
        found = backend.detect([np.asarray(image) for image in scaled], min_size=round(smallest), batch=batch)
    cut = defaults.confidence if min_confidence is None else min_confidence
    return [_kept(faces, photo, image, min_face, cut) for faces, photo, image in zip(found, photos, scaled)]


def _scaled(image: Image.Image, max_side: int) -> Image.Image:
    scale = min(1.0, max_side / max(image.size))
    if scale == 1.0:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))


def _kept(
    faces: list[RawFace], photo: Decoded, image: Image.Image, min_face: int, min_confidence: float
) -> tuple[list[Detection], int]:
    sx, sy = photo.width / image.width, photo.height / image.height
    kept, dropped = [], 0
    for face in faces:
        x, y, w, h = face.box
        x0, y0 = max(0.0, x), max(0.0, y)  # boxes may reach past the photo's edges
        x1, y1 = min(float(image.width), x + w), min(float(image.height), y + h)
        if x1 <= x0 or y1 <= y0:
            continue
        box = Box(round(x0 * sx), round(y0 * sy), round((x1 - x0) * sx), round((y1 - y0) * sy))
        if face.confidence < min_confidence or min(box.w, box.h) < min_face:
            dropped += 1
            continue
        points = np.asarray(face.points, np.float32) * np.float32([sx, sy])
        kept.append(Detection(box, face.confidence, points, (x * sx, y * sy, w * sx, h * sy)))
    kept.sort(key=lambda d: d.box.area, reverse=True)
    return kept, dropped
