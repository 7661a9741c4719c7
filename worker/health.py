"""A liveness file for container healthchecks (``find FILE -mmin -1``), without starting
Python or asking the broker as ``celery inspect ping`` would every interval: the worker's event
loop touches it every 10 s, unless a child is stuck on its chunk (worker/liveness.py)."""

from __future__ import annotations

import logging

from celery import bootsteps

from facelabel.settings import get_settings
from worker.liveness import STALL_SECONDS, stalled_children

INTERVAL = 10.0
log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.path = get_settings().heartbeat_file
        self.tref = None

    def start(self, worker) -> None:
        if self.path is not None:
            self.touch()
            self.tref = worker.timer.call_repeatedly(INTERVAL, self.touch)

    def stop(self, worker) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.path.unlink(missing_ok=True)

    def touch(self) -> None:
        stuck = stalled_children(self.path)
        if stuck:
            log.error("worker child %s made no progress for %d s: reporting unhealthy", stuck, STALL_SECONDS)
            return
        self.path.touch()
