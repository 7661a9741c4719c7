"""``INSERT … ON CONFLICT DO NOTHING`` and ``IN`` lists for the two dialects facelabel runs on."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session, model: type, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert ``rows`` of ``model``, skipping any that collide on the ``conflict`` columns.

    A Core executemany: SQLAlchemy batches it into multi-row VALUES with one cached
    statement (the ORM's bulk path and ad-hoc ``.values(rows)`` both cost far more here).
    """
    if not rows:
        return
    statement = dialect_insert(session, model).on_conflict_do_nothing(index_elements=list(conflict))
    session.connection().execute(statement, list(rows))


def dialect_insert(session: Session, model: type):
    """The dialect's ``insert(model)``, which knows ``on_conflict_do_nothing``."""
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"facelabel supports SQLite and PostgreSQL, not {dialect}")
    return insert(model.__table__)


def among(session: Session, column, values: Iterable[Any]):
    """``column IN values``; on PostgreSQL ``column = ANY(one array parameter)``: one
    statement text whatever the number of values (one entry in the driver's and the server's
    caches of prepared statements), and one parameter to bind instead of one per value."""
    values = list(values)
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
