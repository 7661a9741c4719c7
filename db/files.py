"""Files by path across jobs: when each last got an outcome that still stands, and paths
that moved. A watcher uses them to skip what needs no reading and to keep results with
files that were renamed."""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.models import File, JobItem, Result
from db.upsert import among
from facelabel.confined import NOT_FOUND
from facelabel.paths import opened_path, path_bytes, stored_path

BATCH = 1000  # paths per IN (…) list


def settled_at(
    session: Session, paths: Sequence[str], *, model_version_id: int, detector: str
) -> dict[str, dt.datetime]:
    """For each of ``paths`` whose content this model version and detector labelled, or
    that failed to label (other than by being missing, as under an unmounted share): when
    its last outcome was recorded (UTC). A file changed since needs labelling again; one
    missing here needs it too."""
    stored = {stored_path(path): path for path in paths}
    # Scalar subqueries: per path, one probe of each index (files' path, results' face key,
    # job items' file). As semi-joins they were planned, without statistics, as scans.
    labelled = select(Result.id).where(
        Result.image_id == File.image_id,
        Result.model_version_id == model_version_id,
        Result.detector == detector,
    )
    failed = select(JobItem.job_id).where(
        JobItem.file_id == File.id, JobItem.status == "failed", JobItem.reason != NOT_FOUND
    )
    last = select(func.max(JobItem.finished_at)).where(JobItem.file_id == File.id)
    rows = session.execute(
        select(File.path, last.scalar_subquery()).where(
            among(session, File.path, stored),
            or_(
                labelled.limit(1).scalar_subquery().is_not(None),
                failed.limit(1).scalar_subquery().is_not(None),
            ),
        )
    )
    return {stored[text]: _utc(when) for text, when in rows if when is not None}


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)  # SQLite


def move_files(session: Session, source: str, destination: str) -> int:
    """Files recorded at ``source`` (a file, or a folder and everything under it) are now at
    ``destination``: their rows take the new paths, keeping their content and job history.
    Where a row for the new path exists already, it takes the moved content and the old
    path's row lets go of it. Returns how many paths moved."""
    old = stored_path(source)
    rows = session.execute(
        select(File.id, File.path, File.raw_path, File.image_id, File.read_at).where(
            or_(File.path == old, File.path.startswith(old.rstrip("/") + "/", autoescape=True))
        )
    ).all()
    moved = {}
    for row in rows:
        path = destination + opened_path(row.path, row.raw_path)[len(source) :]
        moved[stored_path(path)] = (row, path)
    texts = list(moved)
    existing = {
        file.path: file
        for start in range(0, len(texts), BATCH)
        for file in session.scalars(select(File).where(File.path.in_(texts[start : start + BATCH])))
    }
    for text, (row, path) in moved.items():
        if text in existing:  # replaced a file the database knew
            target = existing[text]
            target.image_id, target.read_at = row.image_id, row.read_at
            session.get(File, row.id).image_id = None
        else:
            file = session.get(File, row.id)
            file.path, file.raw_path = text, path_bytes(path)
    session.flush()
    return len(moved)
