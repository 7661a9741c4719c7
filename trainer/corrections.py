"""Human corrections as training examples: each corrected face, cropped from its file the way
the worker cropped it, labelled with the corrected attributes and the model's labels for
the others, written as a ``train`` shard beside the other records."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ATTRIBUTES, NO_DETECTOR, Correction, Result
from db.models import File as FileRow
from db.models import Image as ImageRow
from facelabel.confined import ReadError, read_file
from facelabel.paths import opened_path
from facelabel.settings import Settings
from facelabel.vision.detectors import backend_class
from facelabel.vision.imaging import Box, ImageError, aligned_framing, crop_face, decode_image
from trainer.annotations import Example
from trainer.records import MANIFEST, serialize


def corrected_faces(session: Session) -> list[tuple[str, str, Box, str, tuple[int, ...]]]:
    """(path, sha256, box, detector, labels) per corrected face: corrections over the current
    result (``detector``: the one that found the face, whose margins frame it)."""
    faces: dict[tuple[int, int], dict] = {}
    for correction in session.scalars(select(Correction).order_by(Correction.id)):
        face = faces.setdefault((correction.image_id, correction.face), {"box": correction.box, "set": {}})
        face["set"][correction.attribute] = correction.value
    found = []
    for (image_id, index), face in faces.items():
        image = session.get(ImageRow, image_id)
        row = session.execute(
            select(FileRow.path, FileRow.raw_path).where(FileRow.image_id == image_id).limit(1)
        ).first()
        path = opened_path(*row) if row is not None else None
        result = session.scalar(
            select(Result).where(
                Result.image_id == image_id, Result.face == index, Result.is_current.is_(True)
            )
        )
        if image is None or path is None:
            continue
        labels = tuple(
            int(face["set"].get(a, getattr(result, a) if result is not None else False)) for a in ATTRIBUTES
        )
        detector = result.detector if result is not None else NO_DETECTOR
        found.append((path, image.sha256, Box(*face["box"]), detector, labels))
    return found


def write_correction_records(
    session: Session, out: Path, *, size: int, framing: str, settings: Settings
) -> int:
    """Write ``out/train-00000-of-00001.tfrecord`` and its manifest; returns the faces written.

    ``framing`` names the records these join: a detected face's crop is the ``detected``
    framing; a face of an ``--aligned`` job stays its whole image. A file that is gone or
    whose bytes changed since it was labelled is left out.
    """
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    written, positives, skipped = 0, dict.fromkeys(ATTRIBUTES, 0), []
    with tf.io.TFRecordWriter(str(out / "train-00000-of-00001.tfrecord")) as writer:
        for path, sha256, box, detector, labels in corrected_faces(session):
            try:
                data = read_file(path, max_bytes=settings.max_file_bytes, data_roots=settings.data_roots)
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise ImageError("changed since it was labelled")
                decoded = decode_image(data, max_pixels=settings.max_image_pixels)
            except (ReadError, ImageError) as exc:
                skipped.append(f"{path}: {exc}")
                continue
            if detector != NO_DETECTOR:
                box = aligned_framing(dataclasses.astuple(box), backend_class(detector).margins)
            crop = crop_face(decoded, box, size)
            buffer = io.BytesIO()
            Image.fromarray(crop).save(buffer, "PNG", compress_level=1)
            writer.write(serialize(tf, Example(image=path, labels=labels), buffer.getvalue()))
            written += 1
            for attribute, label in zip(ATTRIBUTES, labels):
                positives[attribute] += label
    manifest = {
        "size": size,
        "framing": framing,
        "attributes": list(ATTRIBUTES),
        "source": "human corrections",
        "splits": {
            "train": {"images": written, "positives": positives, "shards": 1, "skipped": len(skipped)},
        },
        "skipped_examples": skipped[:20],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return written
