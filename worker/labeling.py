"""Label one chunk of paths: read → decode → find and crop faces → batched forward pass →
thresholds → one transaction. The Celery task and embedded ``facelabel label`` both call this."""

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
from facelabel.imaging import Box, ImageError
from facelabel.settings import Settings
from worker.faces import NoFace, find_faces
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
    sha256: str | None = None
    size_bytes: int = 0
    reason: str | None = None
    width: int = 0
    height: int = 0
    boxes: list[Box] = dataclasses.field(default_factory=list)
    dropped: int = 0
    crops: list[np.ndarray] = dataclasses.field(default_factory=list)
    faces: tuple[Face, ...] | None = None


def label_chunk(
    sessions: sessionmaker[Session], job_id: int, paths: Sequence[str], *, settings: Settings
) -> ChunkSummary:
    """Label ``paths`` for ``job_id`` and record the outcome; safe to run more than once.

    Threads read, hash and decode ahead while this thread runs the model on full batches.
    """
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJob(f"job {job_id} not found (do the CLI and workers share FACELABEL_DB_URL?)")
        version = session.get(ModelVersion, job.model_version_id)
        roots, options = list(job.roots), dict(job.options)
    batch_size = options.get("batch_size") or settings.batch_size
    items = [_Item(path) for path in paths]
    with ThreadPoolExecutor(settings.decode_threads) as pool:
        aligned = bool(options.get("aligned"))
        prepared = pool.map(lambda item: _prepare(item, roots, version.input_size, aligned, settings), items)
        _classify(sessions, prepared, version, batch_size)

    outcomes = [_outcome(item) for item in items]
    with sessions.begin() as session:
        record_chunk(session, job_id, version.id, outcomes)
    failed = sum(o.reason is not None for o in outcomes)
    faces = sum(len(o.faces or ()) for o in outcomes)
    return ChunkSummary(done=len(outcomes) - failed, failed=failed, faces=faces)


def _prepare(item: _Item, roots: list[str], size: int, aligned: bool, settings: Settings) -> _Item:
    """Read, hash, decode and find the faces of one path (in a worker thread)."""
    try:
        data = read_confined(
            item.path, roots, max_bytes=settings.max_file_bytes, data_roots=settings.data_roots
        )
        item.sha256 = hashlib.sha256(data).hexdigest()
        item.size_bytes = len(data)
        found = find_faces(data, size=size, aligned=aligned, settings=settings)
        item.width, item.height = found.decoded.width, found.decoded.height
        item.boxes, item.crops, item.dropped = found.boxes, found.crops, found.dropped
    except (ReadError, ImageError, NoFace) as exc:
        item.reason = str(exc)
    except Exception as exc:  # a bug must cost one file, not the chunk
        log.exception("unexpected error preparing %s", item.path)
        item.reason = f"internal error: {type(exc).__name__}: {exc}"
    return item


def _classify(
    sessions: sessionmaker[Session], prepared: Iterator[_Item], version: ModelVersion, batch_size: int
) -> None:
    """Run the model over ``prepared`` items in batches of about ``batch_size`` faces.

    Content this model version has labelled before (or earlier in this chunk) is not run
    again: its item keeps ``faces=None`` and the stored results stand.
    """
    from worker.classifier import get_classifier

    classifier = get_classifier(version.path)
    thresholds = [version.thresholds[a] for a in ATTRIBUTES]
    seen: set[str] = set()
    waiting: list[_Item] = []

    def flush() -> None:
        with sessions() as session:
            known = known_images(session, version.id, (i.sha256 for i in waiting))
        todo = []
        for item in waiting:
            if item.sha256 in known or item.sha256 in seen:
                item.crops = []
            else:
                seen.add(item.sha256)
                todo.append(item)
        crops = [crop for item in todo for crop in item.crops]
        probabilities = classifier.predict(np.stack(crops)) if crops else np.zeros((0, 4))
        offset = 0
        for item in todo:
            rows = probabilities[offset : offset + len(item.crops)]
            offset += len(item.crops)
            item.faces = to_faces(item.boxes, rows, thresholds)
            item.crops = []
        waiting.clear()

    for item in prepared:
        if item.reason is None:
            waiting.append(item)
            if sum(len(i.crops) for i in waiting) >= batch_size:
                flush()
    if waiting:
        flush()


def to_faces(
    boxes: Sequence[Box], probabilities: np.ndarray, thresholds: Sequence[float]
) -> tuple[Face, ...]:
    """Boxes and model outputs as faces, labels set by the per-attribute thresholds."""
    return tuple(
        Face(
            box=(box.x, box.y, box.w, box.h),
            probabilities=tuple(round(float(p), 6) for p in row),
            labels=tuple(bool(p >= t) for p, t in zip(row, thresholds)),
        )
        for box, row in zip(boxes, probabilities)
    )


def _outcome(item: _Item) -> Outcome:
    if item.reason is not None:
        return Outcome(path=item.path, reason=item.reason)
    if item.faces is None:  # content labelled before, or earlier in this chunk
        return Outcome(path=item.path, sha256=item.sha256, dropped=item.dropped)
    return Outcome(
        path=item.path,
        sha256=item.sha256,
        size_bytes=item.size_bytes,
        width=item.width,
        height=item.height,
        faces=item.faces,
        dropped=item.dropped,
    )
