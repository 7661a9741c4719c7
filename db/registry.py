"""Model versions: register artifacts and pick the one a job uses."""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ModelVersion
from facelabel.artifact import ArtifactError, load_artifact
from facelabel.settings import BUNDLED_MODEL


def register_model(session: Session, path: str | os.PathLike) -> ModelVersion:
    """The version row for the artifact at ``path``, created on first use.

    A name already registered with different weights is refused: results must always be
    traceable to the exact weights that produced them.
    """
    artifact = load_artifact(path)
    digest = artifact.weights_sha256()
    existing = session.scalar(select(ModelVersion).where(ModelVersion.name == artifact.name))
    if existing is not None:
        if existing.sha256 != digest:
            raise ArtifactError(
                f"model name {artifact.name!r} is already registered with other weights "
                f"({existing.path}); give the new model its own name"
            )
        return existing
    version = ModelVersion(
        name=artifact.name,
        path=str(artifact.directory),
        sha256=digest,
        backbone=artifact.meta["backbone"],
        input_size=artifact.input_size,
        thresholds=artifact.thresholds,
        metrics=artifact.meta.get("metrics", {}),
        meta=artifact.meta,
    )
    session.add(version)
    session.flush()
    return version


def resolve_model(session: Session, spec: str | None) -> ModelVersion:
    """The version for ``spec``: a registered name or an artifact path.

    Without a spec: the active registered version, else the bundled default model.
    """
    if spec:
        named = session.scalar(select(ModelVersion).where(ModelVersion.name == spec))
        return named if named is not None else register_model(session, spec)
    active = session.scalar(select(ModelVersion).where(ModelVersion.is_active.is_(True)))
    return active if active is not None else register_model(session, BUNDLED_MODEL)
