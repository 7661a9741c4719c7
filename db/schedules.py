"""Schedules for beat: cron expressions (UTC) or fixed intervals, of a retraining or of a
rescan of URL prefixes. Each command lists and removes its own kind only."""

from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import Job, Schedule
from facelabel.errors import FacelabelError

RETRAIN, RESCAN = "retrain", "rescan"


class ScheduleError(FacelabelError):
    """A schedule that cannot be stored; ``str()`` is the one-line reason."""


def add_schedule(
    session: Session,
    *,
    cron: str | None = None,
    every_seconds: int | None = None,
    kind: str = RETRAIN,
    options: dict[str, Any] | None = None,
) -> Schedule:
    """Store a schedule: ``cron`` already checked by the scheduler (worker.scheduler.parse_cron)."""
    if (cron is None) == (every_seconds is None):
        raise ScheduleError("give either a cron expression or an interval")
    if cron is not None:
        cron = " ".join(cron.split())
    elif every_seconds < 1:
        raise ScheduleError("the interval must be at least 1 second")
    schedule = Schedule(cron=cron, every_seconds=every_seconds, kind=kind, options=options)
    session.add(schedule)
    session.flush()
    return schedule


def remove_schedule(session: Session, schedule_id: int, kind: str = RETRAIN) -> bool:
    deleted = delete(Schedule).where(Schedule.id == schedule_id, Schedule.kind == kind)
    return session.execute(deleted).rowcount > 0


def list_schedules(session: Session, kind: str = RETRAIN) -> Iterator[dict[str, Any]]:
    for schedule in session.scalars(select(Schedule).where(Schedule.kind == kind).order_by(Schedule.id)):
        row = {
            "id": schedule.id,
            "when": schedule.cron or f"every {schedule.every_seconds} s",
            "created": schedule.created_at,
            "last_run": schedule.last_run_at,
        }
        if kind == RESCAN:
            row |= {
                "urls": " ".join(schedule.options["urls"]),
                "aligned": int(schedule.options["aligned"]),
                "last_job": schedule.last_job_id,
            }
        yield row


def running_job(session: Session, schedule: Schedule) -> int | None:
    """The id of the schedule's last job while its chunks are being labelled (a job still
    "scanning" is left to worker.rescan, which knows whether its scanner is alive)."""
    if schedule.last_job_id is None:
        return None
    status = session.scalar(select(Job.status).where(Job.id == schedule.last_job_id))
    return schedule.last_job_id if status == "running" else None
