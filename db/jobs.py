"""Job lifecycle: register scanned files, record a labelled chunk, finish the job.

Every write here is idempotent, so a chunk delivered twice (a worker killed after writing
but before acknowledging) leaves the database exactly as one delivery would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable, Sequence

from sqlalchemy import Integer, and_, any_, bindparam, case, exists, func, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from db.models import ATTRIBUTES, File, Image, Job, JobItem, Result
from db.upsert import among, insert_ignore
from db.upsert import dialect_insert as _insert
from facelabel.clock import utcnow
from facelabel.paths import path_bytes, stored_path


def _now() -> dt.datetime:
    return utcnow()


@dataclasses.dataclass(frozen=True)
class Face:
    """One classified face: its box, and per attribute (in ``ATTRIBUTES`` order) the
    probability and thresholded label."""

    box: tuple[int, int, int, int]  # x, y, w, h
    probabilities: tuple[float, ...]
    labels: tuple[bool, ...]
    confidence: float | None = None  # the face detector's (None: an aligned image, no detection)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened to one path of a chunk: either an image (with faces) or a failure."""

    path: str
    reason: str | None = None
    sha256: str | None = None
    size_bytes: int = 0
    width: int = 0
    height: int = 0
    faces: tuple[Face, ...] | None = None  # None: known content, results already stored
    dropped: int = 0  # detections under the minimum size or confidence


def create_job(session: Session, *, roots: list[str], options: dict, model_version_id: int) -> Job:
    job = Job(roots=roots, options=options, model_version_id=model_version_id)
    session.add(job)
    session.flush()
    return job


def mark_scanned(session: Session, job_id: int, *, images: int, skipped: int) -> None:
    """Record the scan's totals; the job is complete at once if every chunk already is."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            images=images,
            skipped=skipped,
            scanned_at=_now(),
            status=case((Job.finished >= images, "complete"), else_="running"),
            finished_at=case((Job.finished >= images, _now()), else_=None),
        )
    )


def mark_interrupted(session: Session, job_id: int) -> None:
    """The scan or the sending of a job stopped part way: it will not complete by itself."""
    session.execute(update(Job).where(Job.id == job_id).values(status="interrupted", finished_at=_now()))


def known_images(session: Session, model_version_id: int, detector: str, digests: Iterable[str]) -> set[str]:
    """The digests among ``digests`` whose content this model version and detector have
    already labelled."""
    digests = list(set(digests))
    if not digests:
        return set()
    # A scalar subquery runs once per image, one index probe each. As a semi-join it was
    # planned, without statistics, as a scan of every result (the version and detector all
    # rows share guessed rare): 12 ms a chunk at 8k results, growing with the table.
    first = select(Result.id).where(
        Result.image_id == Image.id, Result.model_version_id == model_version_id, Result.detector == detector
    )
    labelled = first.limit(1).scalar_subquery().is_not(None)
    rows = session.scalars(select(Image.sha256).where(among(session, Image.sha256, digests), labelled))
    return set(rows)


def recorded_paths(session: Session, job_id: int, paths: Sequence[str]) -> set[str]:
    """The paths among ``paths`` whose outcome this job has recorded."""
    stored = {stored_path(path): path for path in paths}
    rows = session.scalars(
        select(File.path)
        .join(JobItem, JobItem.file_id == File.id)
        .where(JobItem.job_id == job_id, among(session, File.path, stored))
    )
    return {stored[text] for text in rows}


def record_chunk(
    session: Session, job_id: int, model_version_id: int, detector: str, outcomes: Sequence[Outcome]
) -> None:
    """Write a chunk's images, faces, files and job items, and count them into the job.

    Items are inserted once: a redelivered chunk inserts none, so it counts nothing twice.
    """
    _without_jit(session)
    images = [o for o in outcomes if o.faces is not None]
    image_ids = _image_ids(session, images, {o.sha256 for o in outcomes if o.reason is None})
    insert_ignore(
        session,
        Result,
        [
            _result_row(image_ids[o.sha256], model_version_id, detector, index, face)
            for o in images
            for index, face in enumerate(o.faces)
        ],
        ["image_id", "model_version_id", "detector", "face"],
    )
    _mark_current(session, {image_ids[o.sha256] for o in images})
    file_ids = _upsert_files(session, outcomes, image_ids)
    face_counts = dict(
        session.execute(
            select(Result.image_id, func.count())
            .where(
                among(session, Result.image_id, image_ids.values()),
                Result.model_version_id == model_version_id,
                Result.detector == detector,
            )
            .group_by(Result.image_id)
        ).all()
    )
    faces = {digest: face_counts.get(image_id, 0) for digest, image_id in image_ids.items()}
    _count_items(session, job_id, outcomes, file_ids, faces)


def _image_ids(session: Session, images: Sequence[Outcome], digests: set[str]) -> dict[str, int]:
    """Image ids by digest (new content inserted), their rows locked for this transaction."""
    rows = [dict(sha256=o.sha256, size_bytes=o.size_bytes, width=o.width, height=o.height) for o in images]
    insert_ignore(session, Image, rows, ["sha256"])
    # Writers of the same images take turns (rows locked in one order, so no deadlock): the
    # second one's current flags then see the first one's rows (PostgreSQL; SQLite has one writer).
    locked = select(Image.sha256, Image.id).where(among(session, Image.sha256, digests))
    return dict(session.execute(locked.order_by(Image.id).with_for_update()).all())


def _count_items(
    session: Session,
    job_id: int,
    outcomes: Sequence[Outcome],
    file_ids: dict[str, int],
    faces: dict[str, int],
) -> None:
    """Insert the chunk's job items (a redelivered one inserts none) and count the new ones."""
    now = _now()
    items = []
    for outcome in outcomes:
        item = {"job_id": job_id, "file_id": file_ids[outcome.path], "finished_at": now}
        if outcome.reason is None:
            found = faces[outcome.sha256]
            item.update(status="done", reason=None, faces=found, dropped_faces=outcome.dropped)
        else:
            item.update(status="failed", reason=outcome.reason, faces=None, dropped_faces=None)
        items.append(item)
    statement = _insert(session, JobItem).on_conflict_do_nothing(index_elements=["job_id", "file_id"])
    inserted = len(session.execute(statement.returning(JobItem.file_id), items).all())
    if inserted:
        finished = Job.finished + inserted
        done = and_(Job.images.is_not(None), finished >= Job.images)
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                finished=finished,
                status=case((done, "complete"), else_=Job.status),
                finished_at=case((done, now), else_=Job.finished_at),
            )
        )


def superseded(result: type[Result], *, same_version: bool = False):
    """A condition on ``result``: another result set replaced it for its image (a newer model
    version, or within the version a set written later by another detector)."""
    newer = aliased(Result)
    later_detector = and_(
        newer.model_version_id == result.model_version_id,
        newer.detector != result.detector,
        newer.id > result.id,
    )
    newer_version = newer.model_version_id > result.model_version_id
    replaced_by = later_detector if same_version else or_(newer_version, later_detector)
    return exists().where(newer.image_id == result.image_id, replaced_by)


def _without_jit(session: Session) -> None:
    """No JIT for the rest of this transaction: compiling a chunk's statements costs far more
    than running them (~200 ms against a few ms), and estimates on tables not analysed yet
    can pass ``jit_above_cost``. Reads that scan a large table (``stats``) keep it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _mark_current(session: Session, image_ids: set[int]) -> None:
    """Flag each image's rows of its newest result set as current, the others not; only
    the rows whose flag changes are written."""
    if not image_ids:
        return
    session.execute(
        update(Result)
        .where(_of_images(session, image_ids), Result.is_current == superseded(Result))
        .values(is_current=~Result.is_current)
        .execution_options(synchronize_session=False)
    )


def _of_images(session: Session, image_ids: set[int]):
    """A condition on ``results``: the row belongs to one of ``image_ids``.

    Without statistics PostgreSQL guesses that one image id matches 0.5 % of ``results``, so
    a list of 64 looks like a third of the table and ``image_id IN (...)`` is planned as a
    scan of all of it. Here each image is one index probe (a lateral subquery, which the
    planner cannot merge into a join over the whole table) and the rows found are then
    taken by primary key. SQLite's planner already uses the index for ``IN``.
    """
    if session.get_bind().dialect.name != "postgresql":
        return Result.image_id.in_(image_ids)
    wanted = func.unnest(bindparam("image_ids", sorted(image_ids), type_=ARRAY(Integer)))
    wanted = wanted.table_valued("id").render_derived(name="wanted")
    listed = aliased(Result, name="listed")
    rows = select(listed.id).where(listed.image_id == wanted.c.id).offset(0).lateral("rows")
    ids = select(rows.c.id).select_from(wanted).join(rows, true())
    return Result.id == any_(func.array(ids.scalar_subquery()))


def _upsert_files(session: Session, outcomes: Sequence[Outcome], image_ids: dict[str, int]) -> dict[str, int]:
    """File ids by path; a readable file points at the content it holds now."""
    now = _now()
    stored = {o.path: stored_path(o.path) for o in outcomes}
    rows = {  # by path: one statement may not update a row twice
        stored[o.path]: {
            "path": stored[o.path],
            "raw_path": path_bytes(o.path),
            "image_id": image_ids.get(o.sha256),
            "read_at": now if o.sha256 else None,
        }
        for o in outcomes
    }
    insert = _insert(session, File)
    upsert = insert.on_conflict_do_update(
        index_elements=["path"],
        set_={
            "image_id": func.coalesce(insert.excluded.image_id, File.image_id),
            "read_at": func.coalesce(insert.excluded.read_at, File.read_at),
        },
    )
    ids = dict(session.connection().execute(upsert.returning(File.path, File.id), list(rows.values())).all())
    return {path: ids[text] for path, text in stored.items()}


def _result_row(image_id: int, model_version_id: int, detector: str, index: int, face: Face) -> dict:
    x, y, w, h = face.box
    row = {
        "image_id": image_id,
        "model_version_id": model_version_id,
        "detector": detector,
        "face": index,
        "box_x": x,
        "box_y": y,
        "box_w": w,
        "box_h": h,
        "detection_confidence": face.confidence,
    }
    for attribute, probability, label in zip(ATTRIBUTES, face.probabilities, face.labels):
        row[f"p_{attribute}"] = probability
        row[attribute] = label
    return row
