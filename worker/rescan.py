"""A scheduled rescan of URL prefixes: one job per firing, submitted as ``facelabel enqueue
URL`` submits it, so content the model has labelled is skipped by the ledger and an
unchanged prefix costs a listing and reads, not inference.

A firing is skipped while the schedule's previous job is being labelled or its listing is
still going (a Redis lease held by the scanning worker, so a scanner that died frees it)."""

from __future__ import annotations

import logging
from typing import Callable

import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Schedule
from db.schedules import RESCAN, running_job
from facelabel.settings import Settings
from worker.lease import Lease
from worker.submit import submit_job

log = logging.getLogger(__name__)
SCAN_LEASE = "facelabel:rescan:{}"  # + the schedule's id; held while its prefixes are listed
LEASE_SECONDS = 60


def busy(session: Session, client: redis.Redis, schedule: Schedule) -> str | None:
    """Why a firing of ``schedule`` now would be skipped, or None."""
    if (job_id := running_job(session, schedule)) is not None:
        return f"its job {job_id} is still running"
    if client.exists(SCAN_LEASE.format(schedule.id)):
        return "its previous rescan is still listing"
    return None


def rescan(
    sessions: sessionmaker[Session],
    settings: Settings,
    schedule_id: int,
    *,
    client: redis.Redis,
    send: Callable[[int, list[str], int], None],
) -> int | None:
    """Submit a job over rescan schedule ``schedule_id``'s URLs; its id, or None when the
    schedule is gone or busy."""
    lease = Lease.take(client, SCAN_LEASE.format(schedule_id), ttl=LEASE_SECONDS)
    if lease is None:
        log.warning("rescan schedule %d: skipped, its previous rescan is still listing", schedule_id)
        return None
    try:
        with sessions() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None or schedule.kind != RESCAN:
                log.info("rescan schedule %d: removed, nothing to do", schedule_id)
                return None
            if (job_id := running_job(session, schedule)) is not None:
                log.warning("rescan schedule %d: skipped, its job %d is still running", schedule_id, job_id)
                return None
            options = dict(schedule.options)

        def record(job_id: int) -> None:
            with sessions.begin() as session:
                session.execute(update(Schedule).where(Schedule.id == schedule_id).values(last_job_id=job_id))

        job_id, counts = submit_job(
            sessions,
            options["urls"],
            settings=settings,
            aligned=options["aligned"],
            batch_size=None,
            model=None,
            send=send,
            on_job=record,
        )
    finally:
        lease.release()
    log.info("rescan schedule %d: job %d, %d images queued", schedule_id, job_id, counts.images)
    return job_id
