"""Human corrections of face labels, one row per (image, face, attribute), latest wins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Correction, File, Result
from facelabel.clock import utcnow
from facelabel.errors import FacelabelError
from facelabel.paths import stored_path


class CorrectionError(FacelabelError):
    """The face to correct does not exist; ``str()`` says why."""


def correct_face(session: Session, path: str, face: int, values: dict[str, bool], author: str) -> None:
    """Store ``values`` for face ``face`` of the content now at ``path``."""
    path = stored_path(path)
    image_id = session.scalar(select(File.image_id).where(File.path == path))
    if image_id is None:
        raise CorrectionError(f"{path} has not been labelled (or could not be read)")
    result = session.scalar(
        select(Result).where(Result.image_id == image_id, Result.face == face, Result.is_current.is_(True))
    )
    if result is None:
        faces = session.scalar(
            select(Result.face)
            .where(Result.image_id == image_id, Result.is_current.is_(True))
            .order_by(Result.face.desc())
            .limit(1)
        )
        found = "no faces" if faces is None else f"faces 0 to {faces}"
        raise CorrectionError(f"{path} has no face {face} ({found})")
    box = [result.box_x, result.box_y, result.box_w, result.box_h]
    now = utcnow()
    for attribute, value in values.items():
        existing = session.scalar(
            select(Correction).where(
                Correction.image_id == image_id, Correction.face == face, Correction.attribute == attribute
            )
        )
        if existing is None:
            session.add(
                Correction(
                    image_id=image_id,
                    face=face,
                    box=box,
                    attribute=attribute,
                    value=value,
                    author=author,
                    created_at=now,
                )
            )
        else:
            existing.value, existing.author, existing.created_at, existing.box = value, author, now, box
    session.flush()
