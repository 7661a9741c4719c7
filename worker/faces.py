"""From image bytes to the model's face crops: decode, then either the whole image (aligned
input) or detected faces framed as CelebA's aligned crops. Shared by labelling and predict."""

from __future__ import annotations

import dataclasses

import numpy as np

from facelabel.imaging import Box, Decoded, aligned_framing, crop_face, decode_image, whole_image
from facelabel.settings import Settings


class NoFace(Exception):
    """Decoded fine, but no face was found."""


@dataclasses.dataclass
class FoundFaces:
    decoded: Decoded
    boxes: list[Box]  # file pixels, largest first
    crops: list[np.ndarray]  # size×size uint8, same order
    dropped: int = 0  # detections under the size or confidence minimum


def find_faces(data: bytes, *, size: int, aligned: bool, settings: Settings) -> FoundFaces:
    """The faces of one image; raises ImageError for unusable bytes, NoFace for none found."""
    if aligned:
        decoded = decode_image(data, max_pixels=settings.max_image_pixels, draft_size=size)
        box = whole_image(decoded)
        return FoundFaces(decoded, [box], [crop_face(decoded, box, size)])
    from worker.detector import detect_faces

    decoded = decode_image(data, max_pixels=settings.max_image_pixels, draft_size=settings.detect_max_side)
    detections, dropped = detect_faces(
        decoded,
        max_side=settings.detect_max_side,
        min_face=settings.min_face_pixels,
        min_confidence=settings.min_face_confidence,
    )
    if not detections:
        extra = f" ({dropped} too small or unsure)" if dropped else ""
        raise NoFace(f"no face found{extra}")
    boxes = [d.box for d in detections]
    crops = [crop_face(decoded, aligned_framing(box), size) for box in boxes]
    return FoundFaces(decoded, boxes, crops, dropped)
