"""Training runs as the CLI, beat and the trainer share them: at most one queued or running."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import ModelVersion, TrainingRun
from facelabel.clock import utcnow
from facelabel.errors import FacelabelError

ACTIVE = ("queued", "running")


class RunError(FacelabelError):
    """A request about a run that cannot be honoured; ``str()`` says why."""


class RunBusy(RunError):
    """Another run is queued or running; ``str()`` names it."""

    def __init__(self, run: TrainingRun):
        super().__init__(
            f"training run {run.id} is already {run.status} (since {run.created_at:%Y-%m-%d %H:%M})"
        )


def start_run(session: Session, trigger: str, status: str = "queued") -> TrainingRun:
    """A new run row (``status`` "skipped" records a firing that did not run)."""
    run = TrainingRun(status=status, trigger=trigger)
    session.add(run)
    session.flush()
    return run


def claim_run(session: Session, trigger: str, *, trainer_alive: Callable[[], bool]) -> TrainingRun:
    """A new queued run; RunBusy while another is queued or running. A run left "running" by
    a trainer that died (``trainer_alive()`` says no) is marked failed and no longer counts."""
    busy = active_run(session)
    if busy is not None and busy.status == "running" and not trainer_alive():
        busy.status, busy.decision = "failed", "the trainer stopped during the run"
        busy.finished_at = utcnow()
    elif busy is not None:
        raise RunBusy(busy)
    try:
        with session.begin_nested():  # another claim may have queued one since the check
            return start_run(session, trigger)
    except IntegrityError:
        raise RunBusy(active_run(session)) from None


def cancel_run(session: Session, run_id: int) -> None:
    """Cancel a queued run (its message lost, or no longer wanted); a running one cannot be."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise RunError(f"no training run {run_id}")
    if run.status != "queued":
        raise RunError(f"training run {run_id} is {run.status}; only a queued run can be cancelled")
    run.status, run.decision = "cancelled", "cancelled by hand"
    run.finished_at = utcnow()


def end_unsent(session: Session, run_id: int, reason: str) -> None:
    """Close a run whose task never reached the broker, so it does not block the next one."""
    run = session.get(TrainingRun, run_id)
    run.status, run.decision = "failed", reason
    run.finished_at = utcnow()


def active_run(session: Session) -> TrainingRun | None:
    return session.scalar(select(TrainingRun).where(TrainingRun.status.in_(ACTIVE)).limit(1))


def list_runs(session: Session) -> Iterator[dict[str, Any]]:
    names = dict(session.execute(select(ModelVersion.id, ModelVersion.name)).all())
    for run in session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())):
        yield {
            "id": run.id,
            "status": run.status,
            "trigger": run.trigger,
            "created": run.created_at,
            "finished": run.finished_at,
            "corrections": run.corrections,
            "challenger": names.get(run.challenger_id),
            "champion": names.get(run.champion_id),
            "decision": run.decision,
        }
