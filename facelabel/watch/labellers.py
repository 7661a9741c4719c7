"""Where a watcher's jobs go: labelled in this process (as ``facelabel label`` does) or sent
to the workers through Redis (as ``facelabel enqueue`` does)."""

from __future__ import annotations

import abc
import datetime as dt
import time
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.files import settled_at
from db.models import NO_DETECTOR, Job
from db.queries import job_counts
from db.registry import resolve_model
from facelabel.settings import BUNDLED_MODEL, Settings
from worker.submit import submit_job


class Labeller(abc.ABC):
    """Turns a watcher's batch of files into one job."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, *, aligned: bool):
        self.sessions, self.settings, self.aligned = sessions, settings, aligned

    def settled(self, paths: list[str]) -> dict[str, dt.datetime]:
        """When each path's standing outcome under the current model version was recorded."""
        with self.sessions.begin() as session:  # may register the bundled model
            version = resolve_model(session, self.settings.model, fallback=BUNDLED_MODEL)
            detector = NO_DETECTOR if self.aligned else self.settings.detector
            return settled_at(session, paths, model_version_id=version.id, detector=detector)

    def idle(self) -> bool:
        """No job of this watcher is still being labelled (a rescan now would not send its
        files a second time)."""
        return True

    @abc.abstractmethod
    def label(self, roots: Sequence[str], files: Sequence[str]) -> str:
        """Make one job of ``files`` (under ``roots``); the line that reports it."""

    def _submit(self, roots, files, send) -> tuple[int, int]:
        job_id, counts = submit_job(
            self.sessions,
            roots,
            settings=self.settings,
            aligned=self.aligned,
            batch_size=None,
            model=None,
            send=send,
            files=files,
        )
        return job_id, counts.images


class LabelHere(Labeller):
    """Each job labelled in this process before the next one starts."""

    def label(self, roots, files) -> str:
        from worker.labeling import label_chunk

        started = time.perf_counter()

        def send(job_id: int, chunk: list[str], chunk_id: int) -> None:
            label_chunk(self.sessions, job_id, chunk, settings=self.settings, chunk_id=chunk_id)

        job_id, _ = self._submit(roots, files, send)
        with self.sessions() as session:
            totals = job_counts(session, job_id)
        return (
            f"job {job_id}: {totals.images} images, {totals.faces} faces, {totals.failed} failures "
            f"in {time.perf_counter() - started:.1f} s"
        )


class SendToWorkers(Labeller):
    """Each job's chunks sent to queue ``label``; the workers label them."""

    def __init__(self, sessions, settings, *, aligned):
        super().__init__(sessions, settings, aligned=aligned)
        self._open: list[int] = []  # jobs sent and not complete when last looked at

    def label(self, roots, files) -> str:
        from worker.celery_app import app
        from worker.tasks import label_chunk_task

        with app.connection_for_write(self.settings.broker) as connection:
            with app.producer_or_acquire(app.amqp.Producer(connection)) as producer:

                def send(job_id: int, chunk: list[str], chunk_id: int) -> None:
                    label_chunk_task.apply_async(
                        args=(job_id, chunk), kwargs={"chunk_id": chunk_id}, producer=producer
                    )

                job_id, images = self._submit(roots, files, send)
        self._open.append(job_id)
        return f"job {job_id}: {images} images queued"

    def idle(self) -> bool:
        if self._open:
            with self.sessions() as session:
                rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(self._open)))
                self._open = [job_id for job_id, status in rows if status in ("scanning", "running")]
        return not self._open
