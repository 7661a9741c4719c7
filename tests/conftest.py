"""Fixtures: real PostgreSQL and Redis (the machine's, or FACELABEL_TEST_* URLs), SQLite
files, and image folders built on the fly."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers import PG_ADMIN_URL, drop_pg_database, fresh_pg_database

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REDIS_URL = os.environ.get("FACELABEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    try:
        url = fresh_pg_database(f"facelabel_test_{uuid.uuid4().hex[:10]}")
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is needed (make test starts it): {exc}")
    yield url
    drop_pg_database(url)


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


@pytest.fixture(scope="session")
def pg_migrated_url(pg_server_url) -> str:
    """A database of its own, migrated once per session, for tests that roll back."""
    from db.engine import open_database

    url = fresh_pg_database(f"{make_url(pg_server_url).database}_tx")
    open_database(url)
    yield url
    drop_pg_database(url)


@pytest.fixture
def pg_rolled_back(pg_migrated_url):
    """Sessions inside one transaction that is rolled back after the test: their commits
    become savepoints, so nothing outlives the test and no migration runs again."""
    from sqlalchemy.orm import sessionmaker

    from db.engine import make_engine

    engine = make_engine(pg_migrated_url)
    connection = engine.connect()
    outer = connection.begin()
    yield sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
    outer.rollback()
    connection.close()
    engine.dispose()


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
