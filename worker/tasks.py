"""Celery tasks. They take ids and paths, re-read state from the database, and are
idempotent, so a redelivered message is harmless."""

from __future__ import annotations

import logging

from celery.signals import worker_process_init
from sqlalchemy.exc import InterfaceError, OperationalError

from db.engine import DatabaseError, open_database
from facelabel.settings import BUNDLED_MODEL, get_settings
from facelabel.storage import StorageUnavailable
from worker.celery_app import LABEL_QUEUE, app
from worker.labeling import label_chunk
from worker.plan import UnknownJob

log = logging.getLogger(__name__)


_settings = get_settings()


@app.task(
    name="facelabel.label_chunk",
    # a database or object store away retries with backoff (at most 2 min apart) until
    # FACELABEL_OUTAGE_DEADLINE; past it the chunk stays in the ledger, where the reconciler finds it
    autoretry_for=(OperationalError, InterfaceError, DatabaseError, StorageUnavailable),
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=6 + _settings.outage_deadline // 120,
    # below the visibility timeout, so a hung chunk ends before Redis hands it out again
    soft_time_limit=int(0.8 * _settings.visibility_timeout),
    time_limit=int(0.9 * _settings.visibility_timeout),
)
def label_chunk_task(job_id: int, paths: list[str], chunk_id: int | None = None) -> dict:
    """Label a chunk of image paths for a job (``chunk_id``: its ledger row)."""
    settings = get_settings()
    try:
        summary = label_chunk(
            open_database(settings.database), job_id, paths, settings=settings, chunk_id=chunk_id
        )
    except UnknownJob as exc:
        log.error("%s: dropping a chunk of %d paths", exc, len(paths))
        return {"error": str(exc)}
    return {"done": summary.done, "failed": summary.failed, "faces": summary.faces}


@app.task(name="facelabel.retrain", acks_late=False)
def retrain_task(run_id: int) -> str:
    """Carry out training run ``run_id`` (queued by `retrain now` or by beat).

    Acknowledged on receipt, not after: a training outlasts the broker's visibility timeout,
    and a redelivered copy must not start a second one. A trainer that dies mid-run leaves
    the run "running" with its lease expired; the next request marks it failed.
    """
    from facelabel.links import redis_client
    from trainer.retrain import retrain
    from worker.lease import TRAINING_LOCK, Lease

    settings = get_settings()
    client = redis_client(settings.broker)
    return retrain(
        open_database(settings.database),
        settings,
        run_id,
        lock=lambda: Lease.take(client, TRAINING_LOCK, ttl=120),
    )


@app.task(name="facelabel.rescan", acks_late=False)
def rescan_task(schedule_id: int) -> dict:
    """Submit a job over rescan schedule ``schedule_id``'s URL prefixes (sent by beat).

    Acknowledged on receipt: a rescan lost with its worker is made by the next firing.
    """
    from facelabel.errors import FacelabelError
    from facelabel.links import redis_client
    from worker.rescan import rescan

    settings = get_settings()
    with app.producer_or_acquire() as producer:

        def send(job_id: int, chunk: list[str], chunk_id: int) -> None:
            label_chunk_task.apply_async(
                args=(job_id, chunk), kwargs={"chunk_id": chunk_id}, producer=producer
            )

        try:
            job_id = rescan(
                open_database(settings.database),
                settings,
                schedule_id,
                client=redis_client(settings.broker),
                send=send,
            )
        except FacelabelError as exc:  # outside FACELABEL_DATA_ROOTS, a prefix gone: next firing
            log.error("rescan schedule %d: %s", schedule_id, settings.redact(str(exc)))
            return {"error": settings.redact(str(exc))}
    return {"job": job_id}


@worker_process_init.connect
def load_default_model(**_kwargs) -> None:
    """Load TensorFlow, the default model and the face detector in each child after fork,
    not in the parent (TensorFlow initialised before fork hangs the children)."""
    from db.registry import resolve_model
    from facelabel.vision.classifier import get_classifier
    from facelabel.vision.detector import warm_up

    if LABEL_QUEUE not in app.amqp.queues.consume_from:  # a trainer: nothing to preload
        return
    settings = get_settings()
    try:
        sessions = open_database(settings.database)
        with sessions.begin() as session:
            version = resolve_model(session, settings.model, fallback=BUNDLED_MODEL)
            path, digest = version.path, version.sha256
        get_classifier(path, settings, sha256=digest)
        warm_up(settings.detector)
    except Exception:  # the first chunk loads what it needs and reports properly
        log.exception("could not preload the default model")
