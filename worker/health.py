"""A liveness file for container healthchecks: the worker's own event loop touches it every
10 s, so a hung worker goes stale and the check (``find FILE -mmin -1``) fails — without
starting Python or asking the broker, as ``celery inspect ping`` would every interval."""

from __future__ import annotations

from celery import bootsteps

from facelabel.settings import get_settings

INTERVAL = 10.0


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
        self.path.touch()
