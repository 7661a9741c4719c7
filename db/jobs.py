"""Job lifecycle: register scanned files, record a labelled chunk, finish the job.

Every write here is idempotent, so a chunk delivered twice (a worker killed after writing
but before acknowledging) leaves the database exactly as one delivery would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable, Sequence

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from db.models import ATTRIBUTES, File, Image, Job, JobItem, Result
from db.upsert import insert_ignore


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Face:
    """One classified face: its box, and per attribute the probability and thresholded label."""

    box: tuple[int, int, int, int]
    probabilities: tuple[float, float, float, float]
    labels: tuple[bool, bool, bool, bool]


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


def create_job(session: Session, *, roots: list[str], options: dict, model_version_id: int) -> Job:
    job = Job(roots=roots, options=options, model_version_id=model_version_id)
    session.add(job)
    session.flush()
    return job


def add_files(session: Session, job_id: int, paths: Sequence[str]) -> None:
    """Register ``paths`` as pending items of the job (a path seen twice counts once)."""
    insert_ignore(session, File, [{"path": p} for p in paths], ["path"])
    ids = session.scalars(select(File.id).where(File.path.in_(paths))).all()
    insert_ignore(
        session, JobItem, [{"job_id": job_id, "file_id": i} for i in ids], ["job_id", "file_id"]
    )


def mark_scanned(session: Session, job_id: int, *, skipped: int) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(skipped=skipped, scanned_at=_now(), status="running")
    )


def finish_if_done(session: Session, job_id: int) -> bool:
    """Mark the job complete when it is scanned and nothing is pending.

    Call it in its own transaction *after* committing a chunk: then the last chunk to commit
    always sees every other chunk's items as finished.
    """
    pending = exists().where(JobItem.job_id == job_id, JobItem.status == "pending")
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.scanned_at.is_not(None), Job.status != "complete", ~pending)
        .values(status="complete", finished_at=_now())
    )
    return result.rowcount == 1


def known_images(session: Session, model_version_id: int, digests: Iterable[str]) -> set[str]:
    """The digests among ``digests`` whose content this model version has already labelled."""
    digests = list(set(digests))
    if not digests:
        return set()
    labelled = exists().where(
        Result.image_id == Image.id, Result.model_version_id == model_version_id
    )
    rows = session.scalars(select(Image.sha256).where(Image.sha256.in_(digests), labelled))
    return set(rows)


def record_chunk(
    session: Session, job_id: int, model_version_id: int, outcomes: Sequence[Outcome]
) -> None:
    """Write a chunk's images, faces and failures, and settle its job items."""
    images = [o for o in outcomes if o.faces is not None]
    digests = {o.sha256 for o in outcomes if o.reason is None}
    insert_ignore(
        session,
        Image,
        [
            {"sha256": o.sha256, "size_bytes": o.size_bytes, "width": o.width, "height": o.height}
            for o in images
        ],
        ["sha256"],
    )
    image_ids = dict(session.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(digests))).all())
    insert_ignore(
        session,
        Result,
        [
            _result_row(image_ids[o.sha256], model_version_id, index, face)
            for o in images
            for index, face in enumerate(o.faces)
        ],
        ["image_id", "model_version_id", "face"],
    )
    face_counts = dict(
        session.execute(
            select(Result.image_id, func.count())
            .where(Result.image_id.in_(image_ids.values()), Result.model_version_id == model_version_id)
            .group_by(Result.image_id)
        ).all()
    )
    paths = [o.path for o in outcomes]
    file_ids = dict(session.execute(select(File.path, File.id).where(File.path.in_(paths))).all())
    now = _now()
    file_rows, item_rows = [], []
    for outcome in outcomes:
        item = {"job_id": job_id, "file_id": file_ids[outcome.path], "finished_at": now}
        if outcome.reason is None:
            image_id = image_ids[outcome.sha256]
            file_rows.append({"id": item["file_id"], "image_id": image_id, "read_at": now})
            item.update(status="done", reason=None, faces=face_counts.get(image_id, 0))
        else:
            item.update(status="failed", reason=outcome.reason, faces=None)
        item_rows.append(item)
    if file_rows:
        session.execute(update(File), file_rows)
    session.execute(update(JobItem), item_rows)


def _result_row(image_id: int, model_version_id: int, index: int, face: Face) -> dict:
    x, y, w, h = face.box
    row = {
        "image_id": image_id,
        "model_version_id": model_version_id,
        "face": index,
        "box_x": x,
        "box_y": y,
        "box_w": w,
        "box_h": h,
    }
    for attribute, probability, label in zip(ATTRIBUTES, face.probabilities, face.labels):
        row[f"p_{attribute}"] = probability
        row[attribute] = label
    return row
