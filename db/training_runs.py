"""Training runs as the CLI and the trainer share them: at most one queued or running."""

from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ModelVersion, TrainingRun

LOCK_KEY = "facelabel:training"  # the Redis lease held while a run trains
ACTIVE = ("queued", "running")


def start_run(session: Session, trigger: str) -> TrainingRun:
    run = TrainingRun(status="queued", trigger=trigger)
    session.add(run)
    session.flush()
    return run


def active_run(session: Session) -> TrainingRun | None:
    return session.scalar(select(TrainingRun).where(TrainingRun.status.in_(ACTIVE)).limit(1))


def list_runs(session: Session) -> Iterator[dict[str, Any]]:
    names = dict(session.execute(select(ModelVersion.id, ModelVersion.name)).all())
    for run in session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())):
        yield {
            "id": run.id,
            "status": run.status,
            "trigger": run.trigger,
            "created": run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "finished": run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else None,
            "corrections": run.corrections,
            "challenger": names.get(run.challenger_id),
            "champion": names.get(run.champion_id),
            "decision": run.decision,
        }
