"""Engines, sessions and schema upgrades (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from facelabel import links
from facelabel.errors import FacelabelError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_REVISION = "0009"  # Alembic head; a test keeps the two equal
MIGRATION_LOCK = 0x6661_6365  # PostgreSQL advisory lock key held while migrating


class DatabaseError(FacelabelError):
    """The database URL is unusable; ``str()`` says why."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 60})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        given = set(parsed.query)
        connect_args = {k: v for k, v in _libpq_timeouts().items() if k not in given}
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        event.listen(engine, "connect", _postgresql_settings)
        return engine
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"unusable database URL {_masked(url)}: {exc}") from None


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable)"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA case_sensitive_like=ON")  # --path globs match as on PostgreSQL
    cursor.close()


def _libpq_timeouts() -> dict[str, int]:
    """The client's side of a dead link (facelabel/links.py): connecting, and a connection
    whose peer went silent, fail in bounded time instead of on TCP's defaults."""
    return {
        "connect_timeout": links.CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": links.KEEPALIVE_IDLE,
        "keepalives_interval": links.KEEPALIVE_INTERVAL,
        "keepalives_count": links.KEEPALIVE_COUNT,
        "tcp_user_timeout": links.USER_TIMEOUT * 1000,  # milliseconds
    }


def _postgresql_settings(dbapi_connection, _record) -> None:
    """Session settings, set after connecting, not as startup options, which PgBouncer
    refuses by default.

    Plan every statement for the tables as they are now. A statement the driver prepares
    (its fifth run on a connection) may get one generic plan, costed on the table sizes of
    that moment and kept for the connection's life: made on a near-empty table, a chunk's
    lookup of 64 digests stayed a scan of the whole table however large it grew (43 ms a
    chunk at 13k images).

    The server's side of a dead link: a worker cut off inside a transaction holds row locks
    that the chunk's next worker waits for; the server's own keepalives end that session,
    and free its locks, within the same bounds as the client's (else the server's TCP
    defaults: hours). No statement timeout: on a live link a statement takes what its work
    takes (migrations, exports), and a dead link is caught by these."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute(
            "SET plan_cache_mode = force_custom_plan;"
            f" SET tcp_keepalives_idle = {links.KEEPALIVE_IDLE};"
            f" SET tcp_keepalives_interval = {links.KEEPALIVE_INTERVAL};"
            f" SET tcp_keepalives_count = {links.KEEPALIVE_COUNT};"
            f" SET tcp_user_timeout = {links.USER_TIMEOUT * 1000}"
        )
    dbapi_connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to call from many processes at once."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        # one process migrates at a time; the others wait, then find the schema current
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN EXCLUSIVE")  # waits up to the busy timeout
        elif connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


@functools.lru_cache(maxsize=8)
def open_database(url: str) -> sessionmaker[Session]:
    """A session factory for ``url`` with the schema upgraded, once per process and URL."""
    engine = make_engine(url)
    try:
        if _revision(engine) != SCHEMA_REVISION:  # skips importing Alembic on most runs
            upgrade(engine)
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            raise
        raise DatabaseError(f"cannot open database {engine.url!r}: {_first_line(exc)}") from exc
    return sessionmaker(engine, expire_on_commit=False)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
