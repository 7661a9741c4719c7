"""``INSERT … ON CONFLICT DO NOTHING`` for the two dialects facelabel runs on."""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session, model: type, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert ``rows`` of ``model``, skipping any that collide on the ``conflict`` columns."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"facelabel supports SQLite and PostgreSQL, not {dialect}")
    session.execute(insert(model).on_conflict_do_nothing(index_elements=list(conflict)), rows)
