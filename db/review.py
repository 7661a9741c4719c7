"""Reads for the review app: the review queue, one face's history, a challenger's
disagreements, the roots a file may be read from."""

from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy import and_, case, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from db.models import ATTRIBUTES, Correction, File, Image, Job, JobItem, ModelVersion, Result
from facelabel.rows import FACE_FIELDS


def face(session: Session, result_id: int) -> dict[str, Any] | None:
    """A result with its image, the paths that hold it (sorted) and its model version's name."""
    row = session.execute(
        select(Result, ModelVersion.name, Image.width, Image.height, Image.sha256)
        .join(ModelVersion, ModelVersion.id == Result.model_version_id)
        .join(Image, Image.id == Result.image_id)
        .where(Result.id == result_id)
    ).one_or_none()
    if row is None:
        return None
    result, model_name, width, height, sha256 = row
    paths = session.scalars(select(File.path).where(File.image_id == result.image_id).order_by(File.path))
    return {
        "result_id": result.id,
        "image_id": result.image_id,
        "sha256": sha256,
        "face": result.face,
        "detector": result.detector,
        "model_version": model_name,
        "is_current": result.is_current,
        "image_width": width,
        "image_height": height,
        "paths": list(paths),
        **{f: getattr(result, f) for f in FACE_FIELDS},
    }


def roots_of(session: Session, image_id: int, path: str) -> list[str]:
    """The roots of the jobs that read ``path`` (holding this image): all the app may read."""
    statement = (
        select(Job.roots)
        .join(JobItem, JobItem.job_id == Job.id)
        .join(File, File.id == JobItem.file_id)
        .where(File.path == path, File.image_id == image_id)
    )
    return sorted({root for roots in session.scalars(statement) for root in roots})


def history(session: Session, image_id: int, face_number: int) -> dict[str, list[dict]]:
    """Every model result for this face (newest first) and the corrections a person made."""
    results = session.execute(
        select(Result, ModelVersion.name)
        .join(ModelVersion, ModelVersion.id == Result.model_version_id)
        .where(Result.image_id == image_id, Result.face == face_number)
        .order_by(Result.created_at.desc(), Result.id.desc())
    )
    corrections = session.scalars(
        select(Correction)
        .where(Correction.image_id == image_id, Correction.face == face_number)
        .order_by(Correction.attribute)
    )
    return {
        "results": [
            {
                "result_id": r.id,
                "model_version": name,
                "detector": r.detector,
                "current": r.is_current,
                "created": r.created_at,
                **{a: (getattr(r, a), getattr(r, f"p_{a}")) for a in ATTRIBUTES},
            }
            for r, name in results
        ],
        "corrections": [
            {"attribute": c.attribute, "value": c.value, "author": c.author, "created": c.created_at}
            for c in corrections
        ],
    }


def review_queue(
    session: Session, attribute: str, *, after: tuple[float, int] | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Current faces nobody has corrected for ``attribute``, the model's least sure first:
    ordered by the distance of the probability from its version's threshold, then id;
    ``after`` (distance, result id) continues past a face (skip)."""
    if attribute not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {attribute!r}")
    thresholds = {
        v.id: float(v.thresholds.get(attribute, 0.5)) for v in session.scalars(select(ModelVersion))
    }
    threshold = (
        case(*((Result.model_version_id == vid, t) for vid, t in thresholds.items()), else_=0.5)
        if thresholds
        else 0.5
    )
    probability = getattr(Result, f"p_{attribute}")
    distance = func.abs(probability - threshold).label("distance")
    corrected = exists().where(
        Correction.image_id == Result.image_id,
        Correction.face == Result.face,
        Correction.attribute == attribute,
    )
    statement = (
        select(Result.id, distance, probability, getattr(Result, attribute))
        .where(Result.is_current.is_(True), ~corrected)
        .order_by(distance, Result.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(tuple_(distance, Result.id) > tuple_(*after))
    return [
        {"result_id": rid, "distance": float(d), "probability": float(p), "label": bool(label)}
        for rid, d, p, label in session.execute(statement)
    ]


def disagreements(
    session: Session, challenger_id: int, champion_id: int | None, *, limit: int = 48
) -> Iterator[dict[str, Any]]:
    """Faces where the challenger's labels differ from the champion's (same image, face and
    detector) or from a person's correction."""
    mine = aliased(Result)
    theirs = aliased(Result)
    differs_from_person = exists().where(
        Correction.image_id == mine.image_id,
        Correction.face == mine.face,
        or_(*(and_(Correction.attribute == a, Correction.value != getattr(mine, a)) for a in ATTRIBUTES)),
    )
    conditions = [differs_from_person]
    if champion_id is not None:
        conditions.append(
            exists().where(
                theirs.model_version_id == champion_id,
                theirs.image_id == mine.image_id,
                theirs.face == mine.face,
                theirs.detector == mine.detector,
                or_(*(getattr(theirs, a) != getattr(mine, a) for a in ATTRIBUTES)),
            )
        )
    statement = (
        select(mine.id, mine.image_id, mine.face, *(getattr(mine, a) for a in ATTRIBUTES))
        .where(mine.model_version_id == challenger_id, or_(*conditions))
        .order_by(mine.id)
        .limit(limit)
    )
    for rid, image_id, face_number, *labels in session.execute(statement):
        yield {"result_id": rid, "image_id": image_id, "face": face_number, **dict(zip(ATTRIBUTES, labels))}
