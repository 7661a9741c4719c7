"""Celery beat's schedule from the ``schedules`` table: ``facelabel retrain schedule`` and
``facelabel rescan schedule`` add a row and beat sends its task from then on, without a restart.

The table is re-read every ``RELOAD_SECONDS``; each firing stores ``last_run_at``, so a
restarted beat neither repeats nor forgets a run. A retraining's firing creates the run row
before sending its id, so a firing while another run is queued or running is recorded as
skipped; a rescan's firing is skipped while the schedule's last job is still being labelled
(worker/rescan.py). Cron expressions are in UTC.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time

from celery.beat import ScheduleEntry, Scheduler
from celery.schedules import ParseException, crontab
from celery.schedules import schedule as every
from sqlalchemy import select, update

from db.engine import open_database
from db.models import Schedule
from db.schedules import RESCAN, RETRAIN, ScheduleError
from db.training_runs import RunBusy, claim_run, end_unsent, start_run
from facelabel.clock import utcnow
from facelabel.links import redis_client
from facelabel.settings import get_settings
from worker.lease import training_lock_held
from worker.reconciler import resend_lost
from worker.rescan import busy

log = logging.getLogger(__name__)
RELOAD_SECONDS = 5.0
RECONCILE_SECONDS = 10.0
RETRAIN_TASK = "facelabel.retrain"
RESCAN_TASK = "facelabel.rescan"
# each kind's entry: its name's prefix (+ the schedule's id), its task and queue
ENTRIES = {RETRAIN: ("retrain-", RETRAIN_TASK, "train"), RESCAN: ("rescan-", RESCAN_TASK, "label")}
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def parse_cron(expression: str) -> crontab:
    """A Celery crontab for a five-field cron expression; ScheduleError when it is not one."""
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


class DatabaseScheduler(Scheduler):
    def __init__(self, *args, **kwargs):
        self._loaded = 0.0
        self._reconciled = 0.0
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        """Also re-send lost chunks every RECONCILE_SECONDS (worker/reconciler.py)."""
        if time.monotonic() - self._reconciled >= RECONCILE_SECONDS:
            self._reconciled = time.monotonic()
            try:
                resend_lost(self.app, get_settings())
            except Exception:  # the database or broker is away: next round
                log.exception("could not reconcile the chunk ledger")
        return min(super().tick(*args, **kwargs), RECONCILE_SECONDS)

    def setup_schedule(self) -> None:
        self._load()

    def _load(self) -> None:
        sessions = open_database(get_settings().database)
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
            prefix, task, queue = ENTRIES[row.kind]
            name = f"{prefix}{row.id}"
            kept = self.data.get(name)
            entries[name] = ScheduleEntry(
                name=name,
                task=task,
                schedule=every(dt.timedelta(seconds=row.every_seconds))
                if row.every_seconds
                else parse_cron(row.cron),
                options={"queue": queue},
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
        """Queue a run row, then send the task for it: while another run is queued or running,
        the firing is recorded as a skipped run instead of a second training waiting in line."""
        if entry.task == RESCAN_TASK:
            return self._rescan(entry, producer=producer, advance=advance, **kwargs)
        schedule_id = int(entry.name.removeprefix(ENTRIES[RETRAIN][0]))
        settings = get_settings()
        sessions = open_database(settings.database)
        with sessions.begin() as session:
            now = utcnow()
            session.execute(update(Schedule).where(Schedule.id == schedule_id).values(last_run_at=now))
            trigger = f"schedule {schedule_id}"
            try:
                run_id = claim_run(
                    session, trigger, trainer_alive=lambda: training_lock_held(settings.broker)
                ).id
            except RunBusy as busy:
                run = start_run(session, trigger, status="skipped")
                run.decision, run.finished_at = str(busy), now
                log.warning("schedule %d: skipped, %s", schedule_id, busy)
                return None
        entry = copy.copy(entry)
        entry.kwargs = {"run_id": run_id}
        try:
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        except Exception:
            with sessions.begin() as session:
                end_unsent(session, run_id, "could not be sent to the broker")
            raise

    def _rescan(self, entry, **kwargs):
        """Send the rescan of a schedule whose last job is done; skip it (a log line) if not."""
        schedule_id = int(entry.name.removeprefix(ENTRIES[RESCAN][0]))
        settings = get_settings()
        with open_database(settings.database).begin() as session:
            session.execute(update(Schedule).where(Schedule.id == schedule_id).values(last_run_at=utcnow()))
            row = session.get(Schedule, schedule_id)
            reason = busy(session, redis_client(settings.broker), row) if row else "removed"
        if reason:
            log.warning("rescan schedule %d: skipped, %s", schedule_id, reason)
            return None
        entry = copy.copy(entry)
        entry.kwargs = {"schedule_id": schedule_id}
        return super().apply_async(entry, **kwargs)
