"""Re-send what the ledger says was lost: chunks whose worker stopped beating, and chunks
still unclaimed while no message waits in the queue (delivered to a worker that died before
claiming them, or dropped by a broker restarted without persistence). Beat runs it every
few seconds; ``facelabel job ID --resume`` re-sends a job's unfinished chunks."""

from __future__ import annotations

import logging

from celery import Celery

from db.chunks import lost_chunks, unfinished_chunks
from db.engine import open_database
from facelabel.links import redis_client
from facelabel.settings import Settings
from worker.celery_app import LABEL_QUEUE
from worker.ledger import STALE_SECONDS

log = logging.getLogger(__name__)
LABEL_TASK = "facelabel.label_chunk"


def resend_lost(app: Celery, settings: Settings) -> int:
    """Send the lost chunks again; how many."""
    empty = nothing_waiting(settings.broker)
    with open_database(settings.database).begin() as session:
        lost = lost_chunks(session, stale_after=STALE_SECONDS, queue_empty=empty)
    _send(app, settings, lost)
    if lost:
        log.warning("re-sent %d lost chunks", len(lost))
    return len(lost)


def resume_job(app: Celery, settings: Settings, job_id: int) -> int:
    """Send every unfinished chunk of the job again (duplicates are harmless); how many."""
    with open_database(settings.database).begin() as session:
        chunks = unfinished_chunks(session, job_id)
    _send(app, settings, chunks)
    return len(chunks)


def nothing_waiting(broker: str) -> bool:
    """No message waits on the label queue: an unclaimed chunk is then in no one's hands."""
    return redis_client(broker).llen(LABEL_QUEUE) == 0


def _send(app: Celery, settings: Settings, chunks: list[tuple[int, int, list[str]]]) -> None:
    if not chunks:
        return
    with app.connection_for_write(settings.broker) as connection:
        with app.producer_or_acquire(app.amqp.Producer(connection)) as producer:
            for chunk_id, job_id, paths in chunks:
                app.send_task(
                    LABEL_TASK, args=(job_id, paths), kwargs={"chunk_id": chunk_id}, producer=producer
                )
