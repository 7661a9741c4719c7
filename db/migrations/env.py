"""Alembic environment: the URL comes from the caller's connection or from the settings."""

from alembic import context
from sqlalchemy import text

from db.models import Base

config = context.config


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Concurrent upgrades (several workers starting) wait here instead of racing.
            connection.execute(text("SELECT pg_advisory_xact_lock(7155001)"))
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    from db.engine import make_engine
    from facelabel.settings import get_settings

    with make_engine(get_settings().database).connect() as connection:
        run_migrations(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
