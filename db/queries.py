"""Read-side queries behind ``query``, ``stats``, ``jobs``, ``job`` and ``failures``."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterator, Sequence

from sqlalchemy import Select, and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from db.jobs import superseded
from db.models import ATTRIBUTES, Chunk, Correction, File, Image, Job, JobItem, ModelVersion, Result
from facelabel.rows import BOX, PROBABILITIES


@dataclasses.dataclass(frozen=True)
class JobCounts:
    images: int | None  # None while the scan runs
    done: int
    failed: int
    faces: int

    @property
    def pending(self) -> int | None:
        return None if self.images is None else self.images - self.done - self.failed


def job_counts(session: Session, job_id: int) -> JobCounts:
    row = session.execute(
        select(
            func.count().filter(JobItem.status == "done"),
            func.count().filter(JobItem.status == "failed"),
            func.coalesce(func.sum(JobItem.faces), 0),
        ).where(JobItem.job_id == job_id)
    ).one()
    return JobCounts(session.scalar(select(Job.images).where(Job.id == job_id)), *row)


def list_jobs(session: Session, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Jobs, newest first, with their progress counts."""
    counts = (
        select(
            JobItem.job_id,
            func.count().filter(JobItem.status == "done").label("done"),
            func.count().filter(JobItem.status == "failed").label("failed"),
            func.coalesce(func.sum(JobItem.faces), 0).label("faces"),
        )
        .group_by(JobItem.job_id)
        .subquery()
    )
    statement = (
        select(Job, ModelVersion.name, counts)
        .join(ModelVersion, ModelVersion.id == Job.model_version_id)
        .outerjoin(counts, counts.c.job_id == Job.id)
        .order_by(Job.id.desc())
        .limit(limit)
    )
    for job, model_name, *row in session.execute(statement):
        _, done, failed, faces = row
        yield job_row(job, model_name, done or 0, failed or 0, faces or 0)


def job_row(job: Job, model_name: str, done: int, failed: int, faces: int) -> dict:
    return {
        "id": job.id,
        "status": job.status,
        "created": job.created_at,
        "images": job.images,
        "done": done,
        "failed": failed,
        "skipped": job.skipped,
        "faces": faces,
        "model_version": model_name,
        "roots": " ".join(job.roots),
        "finished": job.finished_at,
    }


def get_job(session: Session, job_id: int) -> dict[str, Any] | None:
    job = session.get(Job, job_id)
    if job is None:
        return None
    counts = job_counts(session, job_id)
    model_name = session.get(ModelVersion, job.model_version_id).name
    row = job_row(job, model_name, counts.done, counts.failed, counts.faces)
    row.update(
        pending=counts.pending,
        aligned=job.options.get("aligned"),
        chunks_done=session.scalar(
            select(func.count()).where(Chunk.job_id == job_id, Chunk.status == "done")
        ),
        chunks=session.scalar(select(func.count()).where(Chunk.job_id == job_id)),
        detector=job.options.get("detector"),
        face_framing=job.options.get("face_framing"),
    )
    return row


def failures(session: Session, job_id: int | None = None) -> Iterator[dict[str, Any]]:
    statement = (
        select(JobItem.job_id, File.path, JobItem.reason)
        .join(File, File.id == JobItem.file_id)
        .where(JobItem.status == "failed")
        .order_by(JobItem.job_id, File.path)
    )
    if job_id is not None:
        statement = statement.where(JobItem.job_id == job_id)
    for job, path, reason in session.execute(statement.execution_options(yield_per=1000)):
        yield {"job": job, "path": path, "reason": reason}


def _current_results(job_id: int | None, model_version_id: int | None = None) -> Select:
    """Each face of each file's current content, as seen by the newest result set that
    labelled it (or the newest of ``model_version_id``); with ``job_id``, only that job's files."""
    statement = select(File, Result).join(Result, Result.image_id == File.image_id)
    if model_version_id is None:
        statement = statement.where(Result.is_current.is_(True))
    else:
        statement = statement.where(
            Result.model_version_id == model_version_id, ~superseded(Result, same_version=True)
        )
    if job_id is not None:
        statement = statement.where(File.id.in_(select(JobItem.file_id).where(JobItem.job_id == job_id)))
    return statement


def _corrections():
    """Per corrected face, each attribute's corrected value (1/0), NULL where not corrected."""
    return (
        select(
            Correction.image_id,
            Correction.face,
            *(
                func.max(case((Correction.attribute == a, case((Correction.value, 1), else_=0)))).label(a)
                for a in ATTRIBUTES
            ),
        )
        .group_by(Correction.image_id, Correction.face)
        .subquery()
    )


def query_faces(
    session: Session,
    *,
    has: Sequence[str] = (),
    lacks: Sequence[str] = (),
    job_id: int | None = None,
    path_glob: str | None = None,
    min_prob: float | None = None,
    limit: int | None = None,
    model_version_id: int | None = None,
    after: tuple[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per face, in ``QUERY_COLUMNS`` order, then what ``export`` adds (job,
    detector, detection confidence, ``corrected``: the attributes a person set, whose values
    replace the model's; image size) and ``result_id``, ordered by path then face; ``after``
    (path, face) starts past that face (keyset pagination)."""
    base = _current_results(job_id, model_version_id).subquery()
    r = aliased(Result, base)
    f = aliased(File, base)
    corrected = _corrections()
    labels = (
        func.coalesce(corrected.c[a], case((getattr(r, a).is_(True), 1), else_=0)).label(f"label_{a}")
        for a in ATTRIBUTES
    )
    person_values = (corrected.c[a] for a in ATTRIBUTES)
    statement = (
        select(f.path, r, ModelVersion.name, Image.width, Image.height, *labels, *person_values)
        .join(ModelVersion, ModelVersion.id == r.model_version_id)
        .join(Image, Image.id == r.image_id)
        .outerjoin(corrected, and_(corrected.c.image_id == r.image_id, corrected.c.face == r.face))
        .where(*_face_conditions(r, f.path, corrected, has, lacks, min_prob, path_glob, after))
        .order_by(f.path, r.face)
        .limit(limit)
    )
    for path, result, model_name, width, height, *values in session.execute(
        statement.execution_options(yield_per=1000)
    ):
        shown, set_by_person = values[: len(ATTRIBUTES)], values[len(ATTRIBUTES) :]
        row = face_row(path, result, model_name)
        row.update(zip(ATTRIBUTES, shown))
        row.update(
            job=job_id,
            detector=result.detector,
            detection_confidence=result.detection_confidence,
            corrected=",".join(a for a, v in zip(ATTRIBUTES, set_by_person) if v is not None),
            image_width=width,
            image_height=height,
            result_id=result.id,
        )
        yield row


def _face_conditions(r, path, corrected, has, lacks, min_prob, path_glob, after) -> list:
    """``query_faces``' filters on result ``r``, its file's ``path`` and ``corrected``: a
    person's value where there is one, else the model's, written so the planner can use the
    model columns' statistics (a COALESCE hides them and it guesses almost no rows)."""
    conditions = [
        or_(corrected.c[a] == 1, and_(corrected.c[a].is_(None), getattr(r, a).is_(True))) for a in has
    ]
    conditions += [
        or_(corrected.c[a] == 0, and_(corrected.c[a].is_(None), getattr(r, a).is_(False))) for a in lacks
    ]
    if min_prob is not None:
        probs = [getattr(r, f"p_{a}") for a in (has or ATTRIBUTES)]
        conditions.append(
            and_(*(p >= min_prob for p in probs)) if has else or_(*(p >= min_prob for p in probs))
        )
    if path_glob:
        conditions.append(path.like(glob_to_like(path_glob), escape="\\"))
        prefix = re.split(r"[*?]", path_glob, maxsplit=1)[0]
        if prefix:  # every match sorts at or after its literal start: the path index can seek
            conditions.append(path >= prefix)
    if after is not None:
        # the plain bound lets the planner seek the path index; the pair then breaks the tie
        conditions += [path >= after[0], tuple_(path, r.face) > tuple_(*after)]
    return conditions


def face_row(path: str, result: Result, model_name: str) -> dict[str, Any]:
    """A result as ``query``'s columns (the model's labels, probabilities to 4 places)."""
    row: dict[str, Any] = {"path": path, "face": result.face}
    row.update({b: getattr(result, b) for b in BOX})
    row.update({a: int(getattr(result, a)) for a in ATTRIBUTES})
    row.update({p: round(getattr(result, p), 4) for p in PROBABILITIES})
    row["model_version"] = model_name
    return row


def stats(session: Session, job_id: int | None = None) -> dict[str, int]:
    """Faces per attribute over current results (corrections applied); images, faces;
    images with no face found, detections dropped as too small or unsure, failures (no-face
    images included) and skipped non-image files."""
    base = _current_results(job_id).subquery()
    r = aliased(Result, base)
    corrected = _corrections()
    row = session.execute(
        select(
            func.count(),
            *(
                func.coalesce(
                    func.sum(func.coalesce(corrected.c[a], case((getattr(r, a).is_(True), 1), else_=0))), 0
                )
                for a in ATTRIBUTES
            ),
        ).outerjoin(corrected, and_(corrected.c.image_id == r.image_id, corrected.c.face == r.face))
    ).one()
    images = select(func.count()).select_from(File).where(File.image_id.is_not(None))
    items = select(
        func.count().filter(JobItem.status == "failed"),
        func.count().filter(JobItem.reason.like("no face found%")),
        func.coalesce(func.sum(JobItem.dropped_faces), 0),
    )
    skipped = select(func.coalesce(func.sum(Job.skipped), 0))
    if job_id is not None:
        images = select(func.count()).where(JobItem.job_id == job_id, JobItem.status == "done")
        items = items.where(JobItem.job_id == job_id)
        skipped = skipped.where(Job.id == job_id)
    failures, no_face, dropped = session.execute(items).one()
    result = {"images": session.scalar(images), "faces": row[0]}
    result.update(zip(ATTRIBUTES, row[1:]))
    result.update(no_face=no_face, dropped_faces=dropped, failures=failures, skipped=session.scalar(skipped))
    return result


def glob_to_like(pattern: str) -> str:
    """``*`` and ``?`` of a shell glob as a LIKE pattern (``*`` also matches ``/``)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
