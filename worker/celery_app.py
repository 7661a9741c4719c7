"""The Celery application: JSON only, late acks, one message in flight per worker process."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from facelabel import links
from facelabel.settings import get_settings
from worker.health import Heartbeat

LABEL_QUEUE = "label"
TRAIN_QUEUE = "train"


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("facelabel", broker=settings.broker, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=(Queue(LABEL_QUEUE), Queue(TRAIN_QUEUE)),
        task_default_queue=LABEL_QUEUE,
        task_routes={
            "facelabel.label_chunk": {"queue": LABEL_QUEUE},
            "facelabel.retrain": {"queue": TRAIN_QUEUE},
        },
        # Beat reads its schedule from the database and looks for changes every few seconds.
        beat_scheduler="worker.scheduler:DatabaseScheduler",
        beat_max_loop_interval=5,
        # An unacknowledged chunk goes back to the queue this long after delivery: longer
        # than the slowest chunk takes, or chunks run twice (harmless, only wasteful).
        # Abandoned messages are looked for every 10 s (kombu's default is every 100 s).
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # bounded waits on a dead link (facelabel/links.py); the consumer's BRPOP, which
            # no socket timeout covers, is dropped and made again once its reply is
            # health_check_interval overdue. broker_heartbeat is AMQP's: nothing for Redis.
            **links.redis_options(),
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # TensorFlow start-up and a model load take longer than Celery's default 4 s.
        worker_proc_alive_timeout=120,
        worker_send_task_events=True,
    )
    app.steps["worker"].add(Heartbeat)
    return app


app = make_app()
