"""Retraining schedules: cron expressions (UTC) or fixed intervals, stored for beat."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import Schedule

CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(ValueError):
    """A schedule that cannot be stored; ``str()`` is the one-line reason."""


def parse_cron(expression: str):
    """A Celery crontab for a five-field cron expression; ScheduleError when it is not one."""
    from celery.schedules import ParseException, crontab

    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"cron expression {expression!r} has {len(fields)} fields; expected 5 ({', '.join(CRON_FIELDS)})"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )
    except (ParseException, ValueError) as exc:
        raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None


def add_schedule(session: Session, *, cron: str | None = None, every_seconds: int | None = None) -> Schedule:
    if (cron is None) == (every_seconds is None):
        raise ScheduleError("give either a cron expression or an interval")
    if cron is not None:
        parse_cron(cron)
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
            "created": _text(schedule.created_at),
            "last_run": _text(schedule.last_run_at),
        }


def _text(moment: dt.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else None
