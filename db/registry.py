"""Model versions: register artifacts and pick the one a job uses."""

from __future__ import annotations

import os
from typing import Any, Iterator

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import ModelVersion, Promotion, TrainingRun
from db.upsert import insert_ignore
from facelabel.artifact import ArtifactError, load_artifact
from facelabel.clock import utcnow
from facelabel.errors import FacelabelError
from facelabel.estimate import crossval_estimate, gate_estimate


def register_model(session: Session, path: str | os.PathLike) -> ModelVersion:
    """The version row for the artifact at ``path``, created on first use.

    A name already registered with different weights is refused: results must always be
    traceable to the exact weights that produced them.
    """
    artifact = load_artifact(path)
    digest = artifact.weights_sha256()
    row = {
        "name": artifact.name,
        "path": str(artifact.directory),
        "sha256": digest,
        "backbone": artifact.meta["backbone"],
        "input_size": artifact.input_size,
        "thresholds": artifact.thresholds,
        "metrics": artifact.meta.get("metrics", {}),
        "meta": artifact.meta,
        "is_active": False,
        "created_at": utcnow(),
    }
    # processes starting at once (a worker preloading, an enqueue) may both register it
    insert_ignore(session, ModelVersion, [row], ["name"])
    version = session.scalar(select(ModelVersion).where(ModelVersion.name == artifact.name))
    if version.sha256 != digest:
        raise ArtifactError(
            f"model name {artifact.name!r} is already registered with other weights "
            f"({version.path}); give the new model its own name"
        )
    return version


def resolve_model(session: Session, spec: str | None, *, fallback: str | os.PathLike) -> ModelVersion:
    """The version for ``spec``: a registered name or an artifact path.

    Without a spec: the active registered version, else the artifact at ``fallback``.
    """
    if spec:
        named = session.scalar(select(ModelVersion).where(ModelVersion.name == spec))
        return named if named is not None else register_model(session, spec)
    active = active_version(session)
    return active if active is not None else register_model(session, fallback)


def active_version(session: Session) -> ModelVersion | None:
    """The promoted version (one query; workers ask once per chunk)."""
    return session.scalar(select(ModelVersion).where(ModelVersion.is_active.is_(True)))


class RegistryError(FacelabelError):
    """A registry request that cannot be honoured; ``str()`` says why."""


def activate(session: Session, version: ModelVersion, reason: str) -> None:
    """Make ``version`` the one jobs without ``--model`` use, and record why."""
    session.execute(update(ModelVersion).where(ModelVersion.id != version.id).values(is_active=False))
    version.is_active = True
    session.add(Promotion(model_version_id=version.id, reason=reason))
    session.flush()


def promote(session: Session, name: str) -> ModelVersion:
    version = session.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if version is None:
        raise RegistryError(f"no model version named {name!r} (see `facelabel models list`)")
    if not version.is_active:
        activate(session, version, "promoted by hand")
    return version


def rollback(session: Session) -> ModelVersion:
    """Re-activate the version that was active before the current one."""
    current = active_version(session)
    earlier = session.scalar(
        select(ModelVersion)
        .join(Promotion, Promotion.model_version_id == ModelVersion.id)
        .where(ModelVersion.id != (current.id if current else -1))
        .order_by(Promotion.id.desc())
        .limit(1)
    )
    if earlier is None:
        raise RegistryError("no earlier active version to roll back to")
    activate(session, earlier, f"rollback from {current.name}" if current else "rollback")
    return earlier


def list_versions(session: Session) -> Iterator[dict[str, Any]]:
    """Versions, newest first: the estimate for a new person (``facelabel.estimate``; None
    without one) and the last gate that scored each against its champion."""
    runs = {
        run.challenger_id: run
        for run in session.scalars(
            select(TrainingRun).where(TrainingRun.challenger_id.is_not(None)).order_by(TrainingRun.id)
        )
    }
    for version in session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())):
        run = runs.get(version.id)
        gate, champion = (run.challenger_metrics, run.champion_metrics) if run else (None, None)
        estimate = crossval_estimate(version.path) or gate_estimate(gate) or {}
        yield {
            "id": version.id,
            "name": version.name,
            "active": int(version.is_active),
            "created": version.created_at,
            "backbone": version.backbone,
            "input_size": version.input_size,
            "new_person_macro_f1": estimate.get("macro_f1"),
            "new_person_95": estimate.get("macro_f1_95"),
            "new_person_from": estimate.get("from"),
            "gate_macro_f1": gate.get("macro_f1") if gate else None,
            "champion_macro_f1": champion.get("macro_f1") if champion else None,
            "decision": run.decision if run else None,
        }
