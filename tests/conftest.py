"""Fixtures: real PostgreSQL and Redis (the machine's, or FACELABEL_TEST_* URLs), SQLite
files, and image folders built on the fly."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PG_ADMIN_URL = os.environ.get("FACELABEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FACELABEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"facelabel_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is needed (make test starts it): {exc}")
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def pg_url(pg_server_url) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    _reset_postgres(pg_server_url)
    from db.engine import open_database

    open_database.cache_clear()
    return pg_server_url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'facelabel.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'facelabel.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def redis_url() -> str:
    """The test Redis database, emptied for this test."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is needed (make test starts it): {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    value = os.environ.get("FACELABEL_CELEBA_DIR")
    if not value:
        pytest.skip("FACELABEL_CELEBA_DIR is not set")
    return Path(value)
