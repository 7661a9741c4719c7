"""How a job's files are labelled, read from its row: the roots it may read, the model
version, the detector and framing the job chose. The labelling pipeline and the ledger's
file-by-file pass both work from it."""

from __future__ import annotations

import dataclasses

from sqlalchemy.orm import Session, sessionmaker

from db.models import NO_DETECTOR, Job, ModelVersion
from db.registry import active_version
from facelabel.errors import FacelabelError
from facelabel.settings import Settings


class UnknownJob(FacelabelError):
    """The chunk names a job this database does not have."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a job's files are labelled: its roots, model version, detector and settings."""

    job_id: int
    roots: list[str]
    version: ModelVersion
    aligned: bool
    detector: str
    batch_size: int
    settings: Settings


def plan_job(sessions: sessionmaker[Session], job_id: int, settings: Settings) -> Plan:
    """The plan for ``job_id``; settings the job fixed (detector, framing, batch size) win
    over this worker's."""
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise UnknownJob(f"job {job_id} not found (do the CLI and workers share FACELABEL_DB_URL?)")
        roots, options = list(job.roots), dict(job.options)
        version = None if options.get("pinned", True) else active_version(session)
        version = version or session.get(ModelVersion, job.model_version_id)
    aligned = bool(options.get("aligned"))
    detector = NO_DETECTOR if aligned else options.get("detector", "mtcnn")  # jobs before 0004: MTCNN
    if not aligned:  # the job's detector and framing, whatever this worker's settings say
        settings = settings.with_(detector=detector, face_framing=options.get("face_framing", "box"))
    batch_size = options.get("batch_size") or settings.batch_size
    return Plan(job_id, roots, version, aligned, detector, batch_size, settings)
