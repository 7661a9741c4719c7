"""Celery beat's schedule from the ``schedules`` table: ``facelabel retrain schedule`` adds a
row and beat sends the retraining task from then on, without a restart.

The table is re-read every ``RELOAD_SECONDS``; each send stores ``last_run_at``, so a
restarted beat neither repeats nor forgets a run. Cron expressions are in UTC.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import schedule as every
from sqlalchemy import select, update

from db.engine import open_database
from db.models import Schedule
from db.schedules import parse_cron
from facelabel.settings import get_settings

log = logging.getLogger(__name__)
RELOAD_SECONDS = 5.0
RETRAIN_TASK = "facelabel.retrain"


class DatabaseScheduler(Scheduler):
    def __init__(self, *args, **kwargs):
        self._loaded = 0.0
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        self._load()

    def _load(self) -> None:
        sessions = open_database(get_settings().db_url)
        try:
            with sessions() as session:
                rows = session.scalars(select(Schedule)).all()
        except Exception:  # keep the last schedule through a database outage
            log.exception("could not read the schedules; keeping the previous ones")
            return
        finally:
            self._loaded = time.monotonic()
        entries = {}
        for row in rows:
            name = f"retrain-{row.id}"
            kept = self.data.get(name)
            entries[name] = ScheduleEntry(
                name=name,
                task=RETRAIN_TASK,
                schedule=every(dt.timedelta(seconds=row.every_seconds))
                if row.every_seconds
                else parse_cron(row.cron),
                kwargs={"schedule_id": row.id},
                options={"queue": "train"},
                last_run_at=kept.last_run_at if kept else (row.last_run_at or row.created_at),
                app=self.app,
            )
        self.data = entries

    def get_schedule(self) -> dict[str, ScheduleEntry]:
        if time.monotonic() - self._loaded > RELOAD_SECONDS:
            self._load()
        return self.data

    schedule = property(get_schedule, Scheduler.set_schedule)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        try:
            with open_database(get_settings().db_url).begin() as session:
                session.execute(
                    update(Schedule)
                    .where(Schedule.id == entry.kwargs["schedule_id"])
                    .values(last_run_at=dt.datetime.now(dt.timezone.utc))
                )
        except Exception:
            log.exception("could not record the run of %s", entry.name)
        return result
