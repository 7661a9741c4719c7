"""PostgreSQL stopped for a minute in the middle of a job: the worker retries with backoff
and the job completes with every image, none twice. A private PostgreSQL cluster (initdb in
a scratch folder) is stopped and started, never the machine's own. About three minutes: run
by `make faults`, left out of `make test`."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from db.models import JobItem, Result
from tests import images
from tests.helpers import WorkerProcess, wait_for
from tests.test_workers import facelabel, job_status

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = [
    pytest.mark.outage,
    pytest.mark.skipif(not BINARIES, reason="no PostgreSQL server binaries (initdb, pg_ctl) here"),
]


class Cluster:
    """A throw-away PostgreSQL on a free port, run as the ``postgres`` user when we are root."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="facelabel-pg-"))
        self.data = self.folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(Path(BINARIES[-1]) / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def cluster():
    try:
        server = Cluster()
    except (KeyError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a private PostgreSQL cluster here: {exc}")
    server.start()
    yield server
    server.remove()


def test_a_job_rides_out_postgresql_stopped_for_a_minute(tmp_path, cluster, redis_url):
    count = 400
    images.folder_of_images(tmp_path / "photos", count)
    env = {
        "FACELABEL_DB_URL": cluster.url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "16",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    engine = create_engine(cluster.url, pool_pre_ping=True)
    enqueued = facelabel(env, "enqueue", str(tmp_path / "photos"), "--aligned")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = int(enqueued.stdout.strip())
    worker = WorkerProcess("w1", env, tmp_path / "w1.log")
    try:
        wait_for(lambda: _finished(engine, job_id) >= 48, timeout=180, interval=0.2, what="progress")
        engine.dispose()
        cluster.stop()
        time.sleep(60)
        cluster.start()
        wait_for(lambda: job_status(engine, job_id) == "complete", timeout=300, interval=1, what="completion")
    finally:
        worker.stop()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Result)).scalar() == count
        assert _finished(engine, job_id) == count
        failed = select(func.count()).where(JobItem.job_id == job_id, JobItem.status == "failed")
        assert connection.execute(failed).scalar() == 0
    assert (
        "DatabaseError" in (tmp_path / "w1.log").read_text()
        or "OperationalError" in (tmp_path / "w1.log").read_text()
    )  # it did meet the outage


def test_a_worker_started_while_postgresql_is_down_labels_once_it_is_back(tmp_path, cluster, redis_url):
    count = 64
    images.folder_of_images(tmp_path / "photos", count)
    env = {"FACELABEL_DB_URL": cluster.url, "FACELABEL_BROKER_URL": redis_url, "FACELABEL_CHUNK_SIZE": "16"}
    engine = create_engine(cluster.url, pool_pre_ping=True)
    enqueued = facelabel(env, "enqueue", str(tmp_path / "photos"), "--aligned")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = int(enqueued.stdout.strip())
    engine.dispose()
    cluster.stop()
    worker = WorkerProcess("w1", env, tmp_path / "w1.log")
    try:
        time.sleep(60)
        assert worker.process.poll() is None, "the worker gave up while the database was away"
        cluster.start()
        wait_for(lambda: job_status(engine, job_id) == "complete", timeout=300, interval=1, what="completion")
    finally:
        worker.stop()
    assert _finished(engine, job_id) == count


def _finished(engine, job_id):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(JobItem.job_id == job_id)).scalar()
