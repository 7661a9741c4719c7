"""Helpers shared by the tests and the benchmarks: the CLI in this process, real worker
processes, and PostgreSQL databases of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

PG_ADMIN_URL = os.environ.get("FACELABEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def invoke_ok(*args) -> str:
    """``facelabel ARGS`` in this process; its output, after checking it exited 0."""
    from click.testing import CliRunner

    from facelabel.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def query_rows(url: str, *options) -> list[dict]:
    """``facelabel --db URL query --format json OPTIONS``: its rows, read from stdout only (a
    note on corrections goes to stderr)."""
    import json

    from click.testing import CliRunner

    from facelabel.cli import main

    result = CliRunner().invoke(main, ["--db", url, "query", "--format", "json", *map(str, options)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fresh_pg_database(name: str) -> str:
    """The URL of an empty PostgreSQL database ``name`` (dropped first if it exists)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


class WorkerProcess:
    """A Celery worker in its own process group, so a kill takes its children too."""

    def __init__(self, name: str, env: dict[str, str], log: Path, *extra: str):
        self.log = log
        self.handle = open(log, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "facelabel",
                "worker",
                "--hostname",
                f"{name}@%h",
                "--loglevel",
                "INFO",
                *extra,
            ],
            env={**os.environ, **env},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)
        self.handle.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()


def start_beat(env: dict[str, str], log: Path) -> subprocess.Popen:
    """``facelabel beat`` (the schedules and the chunk reconciler) in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "facelabel", "beat", "--loglevel", "INFO"],
        env={**os.environ, **env},
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(
    condition: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
