"""Label one chunk of paths: read → decode → crop faces → batched forward pass → thresholds
→ one transaction. The Celery task and embedded ``facelabel label`` both call this."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.jobs import Face, Outcome, known_images, record_chunk
from db.models import ATTRIBUTES, Job, ModelVersion
from facelabel.imaging import ImageError, crop_face, decode_image, whole_image
from facelabel.settings import Settings
from worker.reading import ReadError, read_confined

log = logging.getLogger(__name__)


class UnknownJob(Exception):
    """The chunk names a job this database does not have."""


@dataclasses.dataclass(frozen=True)
class ChunkSummary:
    done: int
    failed: int
    faces: int


@dataclasses.dataclass
class _Item:
    """One path on its way through the pipeline."""

    path: str
    data: bytes | None = None
    sha256: str | None = None
    size_bytes: int = 0
    reason: str | None = None
    width: int = 0
    height: int = 0
    boxes: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)
    crops: list[np.ndarray] = dataclasses.field(default_factory=list)
    faces: tuple[Face, ...] | None = None


def label_chunk(
    sessions: sessionmaker[Session], job_id: int, paths: Sequence[str], *, settings: Settings
) -> ChunkSummary:
    """Label ``paths`` for ``job_id`` and record the outcome; safe to run more than once."""
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJob(f"job {job_id} not found (do the CLI and workers share FACELABEL_DB_URL?)")
        version = session.get(ModelVersion, job.model_version_id)
        roots, options = list(job.roots), dict(job.options)
    batch_size = options.get("batch_size") or settings.batch_size
    items = [_Item(path) for path in paths]

    with ThreadPoolExecutor(settings.decode_threads) as pool:
        list(pool.map(lambda item: _read(item, roots, settings), items))
        with sessions() as session:
            known = known_images(session, version.id, (i.sha256 for i in items if i.sha256))
        first_of_content: dict[str, _Item] = {}
        for item in items:
            if item.sha256 and item.sha256 not in known:
                first_of_content.setdefault(item.sha256, item)
        unique = list(first_of_content.values())
        prepared = pool.map(lambda item: _prepare(item, version.input_size, settings), unique)
        _classify(prepared, version, batch_size)

    outcomes = [_outcome(item, first_of_content) for item in items]
    with sessions.begin() as session:
        record_chunk(session, job_id, version.id, outcomes)
    failed = sum(o.reason is not None for o in outcomes)
    faces = sum(len(o.faces or ()) for o in outcomes)
    return ChunkSummary(done=len(outcomes) - failed, failed=failed, faces=faces)


def _read(item: _Item, roots: list[str], settings: Settings) -> None:
    try:
        item.data = read_confined(
            item.path, roots, max_bytes=settings.max_file_bytes, data_roots=settings.data_roots
        )
    except ReadError as exc:
        item.reason = str(exc)
        return
    item.sha256 = hashlib.sha256(item.data).hexdigest()
    item.size_bytes = len(item.data)


def _prepare(item: _Item, size: int, settings: Settings) -> _Item:
    """Decode and crop; the slot where face detection goes for non-aligned jobs."""
    try:
        decoded = decode_image(item.data, max_pixels=settings.max_image_pixels, draft_size=size)
        box = whole_image(decoded)
        item.width, item.height = decoded.width, decoded.height
        item.boxes = [(box.x, box.y, box.w, box.h)]
        item.crops = [crop_face(decoded, box, size)]
    except ImageError as exc:
        item.reason = str(exc)
    except Exception as exc:  # a bug must cost one file, not the chunk
        log.exception("unexpected error preparing %s", item.path)
        item.reason = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        item.data = None
    return item


def _classify(prepared: Iterator[_Item], version: ModelVersion, batch_size: int) -> None:
    """Run the model over the faces of ``prepared`` items in batches of ``batch_size``."""
    from worker.classifier import get_classifier

    classifier = get_classifier(version.path)
    thresholds = [version.thresholds[a] for a in ATTRIBUTES]
    waiting: list[_Item] = []
    pending_faces = 0

    def flush() -> None:
        crops = [crop for item in waiting for crop in item.crops]
        probabilities = classifier.predict(np.stack(crops)) if crops else np.zeros((0, 4))
        offset = 0
        for item in waiting:
            rows = probabilities[offset : offset + len(item.crops)]
            offset += len(item.crops)
            item.faces = tuple(
                Face(
                    box=box,
                    probabilities=tuple(round(float(p), 6) for p in row),
                    labels=tuple(bool(p >= t) for p, t in zip(row, thresholds)),
                )
                for box, row in zip(item.boxes, rows)
            )
            item.crops = []

    for item in prepared:
        if item.reason is not None:
            continue
        waiting.append(item)
        pending_faces += len(item.crops)
        if pending_faces >= batch_size:
            flush()
            waiting, pending_faces = [], 0
    flush()


def _outcome(item: _Item, first_of_content: dict[str, _Item]) -> Outcome:
    if item.reason is not None:
        return Outcome(path=item.path, reason=item.reason)
    source = first_of_content.get(item.sha256)
    if source is not None and source.reason is not None:
        return Outcome(path=item.path, reason=source.reason)
    if source is None or source is not item:  # content labelled before, or earlier in this chunk
        return Outcome(path=item.path, sha256=item.sha256)
    return Outcome(
        path=item.path,
        sha256=item.sha256,
        size_bytes=item.size_bytes,
        width=item.width,
        height=item.height,
        faces=item.faces,
    )
