"""From image bytes to the model's face crops: decode, then either the whole image (aligned
input) or detected faces framed as CelebA's aligned crops. Shared by labelling, predict and
the trainer's records, so every crop a model sees is made here."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from facelabel.errors import FacelabelError
from facelabel.settings import Settings
from facelabel.vision.imaging import (
    Box,
    Decoded,
    aligned_framing,
    crop_face,
    crop_quad,
    decode_image,
    landmark_framing,
    whole_image,
)


class NoFace(FacelabelError):
    """Decoded fine, but no face was found."""


@dataclasses.dataclass
class FoundFaces:
    decoded: Decoded
    boxes: list[Box]  # file pixels, largest first
    crops: list[np.ndarray]  # size×size uint8, same order
    dropped: int = 0  # detections under the size or confidence minimum
    confidences: list[float | None] | None = None  # the detector's, same order (None: aligned)


# Photos decode (JPEG draft mode) to at least this many pixels on their shorter side unless
# FACELABEL_DETECT_MAX_SIDE asks for less: the crops need the detail even where the detector
# works on a smaller copy.
DECODE_SIDE = 1024


def decode_for_faces(data: bytes, *, size: int, aligned: bool, settings: Settings) -> Decoded:
    """Decode at the smallest scale the crops (aligned) or the detector still need."""
    draft = size if aligned else settings.detect_max_side or DECODE_SIDE
    return decode_image(data, max_pixels=settings.max_image_pixels, draft_size=draft)


def faces_in(
    photos: Sequence[Decoded], *, size: int, aligned: bool, settings: Settings
) -> list[FoundFaces | NoFace]:
    """The faces of each decoded photo (detection runs in batches), or NoFace for it."""
    if aligned:
        return [
            FoundFaces(photo, [whole_image(photo)], [crop_face(photo, whole_image(photo), size)])
            for photo in photos
        ]
    from facelabel.vision.detector import detect_faces
    from facelabel.vision.detectors import FRAME, get_backend

    detected = detect_faces(
        photos,
        detector=settings.detector,
        max_side=settings.detect_max_side,
        min_face=settings.min_face_pixels,
        min_confidence=settings.min_face_confidence,
        batch=settings.detect_batch,
    )
    backend = get_backend(settings.detector)
    results: list[FoundFaces | NoFace] = []
    for photo, (detections, dropped) in zip(photos, detected):
        if not detections:
            extra = f" ({dropped} too small or unsure)" if dropped else ""
            results.append(NoFace(f"no face found{extra}"))
            continue
        if settings.face_framing == "landmarks":
            crops = [
                crop_quad(photo, landmark_framing(d.points, backend.template, FRAME), size)
                for d in detections
            ]
        else:
            crops = [crop_face(photo, aligned_framing(d.extent, backend.margins), size) for d in detections]
        boxes = [d.box for d in detections]
        results.append(FoundFaces(photo, boxes, crops, dropped, [d.confidence for d in detections]))
    return results


def find_faces(data: bytes, *, size: int, aligned: bool, settings: Settings) -> FoundFaces:
    """The faces of one image; raises ImageError for unusable bytes, NoFace for none found."""
    photo = decode_for_faces(data, size=size, aligned=aligned, settings=settings)
    (result,) = faces_in([photo], size=size, aligned=aligned, settings=settings)
    if isinstance(result, NoFace):
        raise result
    return result
