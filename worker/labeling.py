"""Label one chunk of paths: read → decode → find and crop faces → batched forward pass →
thresholds → one transaction. The Celery task and embedded ``facelabel label`` both call this."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.chunks import finish_chunk
from db.jobs import Face, Outcome, known_images, record_chunk
from db.models import ATTRIBUTES, ModelVersion
from facelabel.confined import ReadError, read_confined
from facelabel.settings import Settings
from facelabel.storage import StorageUnavailable
from facelabel.vision.faces import FoundFaces, NoFace, decode_for_faces, faces_in
from facelabel.vision.imaging import Box, Decoded, ImageError
from worker import ledger, liveness, metrics
from worker.plan import Plan, plan_job

log = logging.getLogger(__name__)


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
    photo: Decoded | None = None
    boxes: list[Box] = dataclasses.field(default_factory=list)
    confidences: list[float | None] | None = None
    dropped: int = 0
    crops: list[np.ndarray] = dataclasses.field(default_factory=list)
    faces: tuple[Face, ...] | None = None


def label_chunk(
    sessions: sessionmaker[Session],
    job_id: int,
    paths: Sequence[str],
    *,
    settings: Settings,
    chunk_id: int | None = None,
) -> ChunkSummary:
    """Label ``paths`` for ``job_id`` and record the outcome; safe to run more than once.

    Threads read, hash and decode ahead while this thread detects faces in batches of
    photos and runs the model on full batches of faces. With ``chunk_id`` (a ledger chunk)
    the chunk is claimed, kept alive by a heartbeat and marked done with its results; a
    chunk retried after its worker died goes file by file (worker/ledger.py).
    """
    started = time.perf_counter()
    plan = plan_job(sessions, job_id, settings)
    with liveness.busy(), ledger.claimed(sessions, chunk_id) as claim:
        if claim is not None and claim.done:
            return ChunkSummary(done=0, failed=0, faces=0)
        if claim is not None and claim.careful:
            outcomes = ledger.file_by_file(sessions, plan, claim, paths, _label_paths)
        else:
            outcomes = _label_paths(sessions, plan, paths)
            with sessions.begin() as session:
                record_chunk(session, job_id, plan.version.id, plan.detector, outcomes)
                if chunk_id is not None:
                    finish_chunk(session, chunk_id)
    failed = sum(o.reason is not None for o in outcomes)
    faces = sum(len(o.faces or ()) for o in outcomes)
    metrics.IMAGES.labels("labelled").inc(len(outcomes) - failed)
    metrics.IMAGES.labels("failed").inc(failed)
    metrics.CHUNK_SECONDS.observe(time.perf_counter() - started)
    return ChunkSummary(done=len(outcomes) - failed, failed=failed, faces=faces)


def _label_paths(sessions: sessionmaker[Session], plan: Plan, paths: Sequence[str]) -> list[Outcome]:
    """Every path's outcome: read, decode, detect and crop, classify (nothing stored yet)."""
    version, settings = plan.version, plan.settings
    items = [_Item(path) for path in paths]
    store = _StoreWait(time.monotonic() + storage_patience(settings))
    with ThreadPoolExecutor(settings.decode_threads) as pool:
        read = _in_order(
            pool,
            lambda item: _read(item, plan.roots, version.input_size, plan.aligned, settings, store),
            items,
            # aligned crops are small; photos waiting for the detector are not
            ahead=len(items) if plan.aligned else 2 * max(settings.detect_batch, settings.decode_threads),
        )
        if plan.aligned:
            found = read
        else:

            def labelled(digests: list[str]) -> set[str]:
                with sessions() as session:
                    return known_images(session, version.id, plan.detector, digests)

            found = _detected(read, version.input_size, settings, labelled)
        _classify(sessions, liveness.moving(found), version, plan.detector, settings, plan.batch_size)
    return [_outcome(item) for item in items]


@dataclasses.dataclass
class _StoreWait:
    """The time a chunk's reads have, together, to wait out an unreachable object store; once
    one read has given up the others do not try (the chunk is retried whole)."""

    until: float
    gave_up: threading.Event = dataclasses.field(default_factory=threading.Event)

    def left(self) -> float:
        if self.gave_up.is_set():
            raise StorageUnavailable("object store unavailable: another read of this chunk gave up")
        return max(0.0, self.until - time.monotonic())


def _read(
    item: _Item, roots: list[str], size: int, aligned: bool, settings: Settings, store: _StoreWait
) -> _Item:
    """Read, hash and decode one path (in a worker thread); aligned faces are cropped here too."""
    try:
        data = read_confined(
            item.path,
            roots,
            max_bytes=settings.max_file_bytes,
            data_roots=settings.data_roots,
            outage_deadline=store.left(),
        )
        item.sha256 = hashlib.sha256(data).hexdigest()
        item.size_bytes = len(data)
        item.photo = decode_for_faces(data, size=size, aligned=aligned, settings=settings)
        item.width, item.height = item.photo.width, item.photo.height
        if aligned:
            (found,) = faces_in([item.photo], size=size, aligned=True, settings=settings)
            _take(item, found)
    except (ReadError, ImageError) as exc:
        item.reason = str(exc)
    except StorageUnavailable:  # past the chunk's patience: Celery retries it, or the ledger
        store.gave_up.set()
        raise
    except Exception as exc:  # a bug must cost one file, not the chunk
        log.exception("unexpected error preparing %s", item.path)
        item.reason = f"internal error: {type(exc).__name__}: {exc}"
    return item


def storage_patience(settings: Settings) -> float:
    """How long a chunk's reads wait out an unreachable store before the chunk gives up (and
    Celery retries it until FACELABEL_OUTAGE_DEADLINE): well inside the task's time limits,
    which follow the visibility timeout, so a wait is never mistaken for a file that hangs."""
    return min(settings.outage_deadline, settings.visibility_timeout / 2)


def _detected(
    read: Iterable[_Item], size: int, settings: Settings, labelled: Callable[[list[str]], set[str]]
) -> Iterator[_Item]:
    """Detect and crop faces, ``detect_batch`` decoded photos at a time, while threads decode
    on. Content the model version has ``labelled`` already skips detection (its results stand)."""
    waiting: list[_Item] = []

    def detect() -> Iterator[_Item]:
        done_before = labelled([i.sha256 for i in waiting])
        todo = [i for i in waiting if i.sha256 not in done_before]
        try:
            found = []
            if todo:
                with metrics.DETECT_SECONDS.time():
                    found = faces_in([i.photo for i in todo], size=size, aligned=False, settings=settings)
        except Exception as exc:  # a bug must cost these files, not the chunk
            log.exception("unexpected error detecting faces")
            found = [NoFace(f"internal error: {type(exc).__name__}: {exc}")] * len(todo)
        for item, result in zip(todo, found):
            _take(item, result)
        for item in waiting:
            item.photo = None
        yield from waiting
        waiting.clear()

    for item in read:
        if item.reason is not None:
            yield item
            continue
        waiting.append(item)
        if len(waiting) >= settings.detect_batch:
            yield from detect()
    if waiting:
        yield from detect()


def _take(item: _Item, found: FoundFaces | NoFace) -> None:
    item.photo = None  # the decoded pixels are not needed past this point
    if isinstance(found, NoFace):
        item.reason = str(found)
    else:
        item.boxes, item.crops, item.dropped = found.boxes, found.crops, found.dropped
        item.confidences = found.confidences


def _in_order(pool: ThreadPoolExecutor, work, items: Iterable, *, ahead: int) -> Iterator:
    """``pool.map`` that keeps at most ``ahead`` results pending, bounding decoded memory."""
    pending: collections.deque[Future] = collections.deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _classify(
    sessions: sessionmaker[Session],
    prepared: Iterable[_Item],
    version: ModelVersion,
    detector: str,
    settings: Settings,
    batch_size: int,
) -> None:
    """Run the model over ``prepared`` items in batches of about ``batch_size`` faces.

    Content this model version has labelled before (or earlier in this chunk) is not run
    again: its item keeps ``faces=None`` and the stored results stand.
    """
    from facelabel.vision.classifier import get_classifier

    classifier = get_classifier(version.path, settings, sha256=version.sha256)
    thresholds = [version.thresholds[a] for a in ATTRIBUTES]
    seen: set[str] = set()
    waiting: list[_Item] = []

    def flush() -> None:
        with sessions() as session:
            known = known_images(session, version.id, detector, (i.sha256 for i in waiting))
        todo = []
        for item in waiting:
            if item.sha256 in known or item.sha256 in seen:
                item.crops = []
            else:
                seen.add(item.sha256)
                todo.append(item)
        crops = [crop for item in todo for crop in item.crops]
        if crops:
            with metrics.BATCH_SECONDS.time():
                probabilities = classifier.predict(np.stack(crops))
            metrics.FACES.inc(len(crops))
        else:
            probabilities = np.zeros((0, len(ATTRIBUTES)))
        offset = 0
        for item in todo:
            rows = probabilities[offset : offset + len(item.crops)]
            offset += len(item.crops)
            item.faces = to_faces(item.boxes, rows, thresholds, item.confidences)
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
    boxes: Sequence[Box],
    probabilities: np.ndarray,
    thresholds: Sequence[float],
    confidences: Sequence[float | None] | None = None,
) -> tuple[Face, ...]:
    """Boxes and model outputs as faces, labels set by the per-attribute thresholds."""
    return tuple(
        Face(
            box=(box.x, box.y, box.w, box.h),
            probabilities=tuple(round(float(p), 6) for p in row),
            labels=tuple(bool(p >= t) for p, t in zip(row, thresholds)),
            confidence=None if confidence is None else round(confidence, 4),
        )
        for box, row, confidence in zip(boxes, probabilities, confidences or [None] * len(boxes))
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
