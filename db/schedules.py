"""Retraining schedules: cron expressions (UTC) or fixed intervals, stored for beat."""

from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import Schedule
from facelabel.errors import FacelabelError


class ScheduleError(FacelabelError):
    """A schedule that cannot be stored; ``str()`` is the one-line reason."""


def add_schedule(session: Session, *, cron: str | None = None, every_seconds: int | None = None) -> Schedule:
    """Store a schedule: ``cron`` already checked by the scheduler (worker.scheduler.parse_cron)."""
    if (cron is None) == (every_seconds is None):
        raise ScheduleError("give either a cron expression or an interval")
    if cron is not None:
        cron = " ".join(cron.split())
    elif every_seconds < 1:
        raise ScheduleError("the interval must be at least 1 second")
    schedule = Schedule(cron=cron, every_seconds=every_seconds)
    session.add(schedule)
    session.flush()
    return schedule


def remove_schedule(session: Session, schedule_id: int) -> bool:
    return session.execute(delete(Schedule).where(Schedule.id == schedule_id)).rowcount > 0


def list_schedules(session: Session) -> Iterator[dict[str, Any]]:
    for schedule in session.scalars(select(Schedule).order_by(Schedule.id)):
        yield {
            "id": schedule.id,
            "when": schedule.cron or f"every {schedule.every_seconds} s",
            "created": schedule.created_at,
            "last_run": schedule.last_run_at,
        }
