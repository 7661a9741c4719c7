"""Distributed mode against the real Redis and PostgreSQL: enqueue → Celery worker
processes → results in SQL, including a worker killed with SIGKILL mid-job."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from db.models import Job, JobItem, Result
from facelabel.cli.labeling import default_processes
from facelabel.settings import read_settings
from tests import images
from tests.helpers import WorkerProcess, start_beat, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_env(pg_url, redis_url, tmp_path):
    return {
        "FACELABEL_DB_URL": pg_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "16",
        "FACELABEL_VISIBILITY_TIMEOUT": "20",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


@pytest.fixture
def workers(tmp_path, stack_env):
    started = []

    def start(name):
        worker = WorkerProcess(name, stack_env, tmp_path / f"{name}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def facelabel(env, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "facelabel", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_enqueue_wait_labels_a_folder_through_a_worker(tmp_path, stack_env, workers):
    images.folder_of_images(tmp_path / "photos", 40)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    workers("w1")
    result = facelabel(stack_env, "enqueue", str(tmp_path / "photos"), "--aligned", "--wait")
    assert result.returncode == 0, result.stderr
    job_id = int(result.stdout.splitlines()[0])
    assert "complete: 40 images, 40 faces, 1 failures" in result.stdout
    rows = facelabel(stack_env, "query", "--job", str(job_id), "--format", "csv").stdout.splitlines()
    assert len(rows) == 41  # header + one face per image
    failures = facelabel(stack_env, "failures", "--job", str(job_id), "--format", "csv").stdout
    assert "broken.jpg" in failures and "not an image" in failures
    processes, _ = default_processes(read_settings(), "label", len(os.sched_getaffinity(0)))
    assert f"concurrency: {processes} (prefork)" in (tmp_path / "w1.log").read_text()


def test_worker_killed_mid_job_loses_and_duplicates_nothing(tmp_path, stack_env, workers):
    """Redis hands the dead worker's unacknowledged chunks back after the visibility timeout.
    A message it had popped but not yet recorded as unacknowledged (kombu's window between
    BRPOP and its unacked hash, wider on a busy machine) is the ledger's to send again, so
    beat runs beside the workers, as in every deployment."""
    count = 320
    images.folder_of_images(tmp_path / "photos", count)
    engine = create_engine(stack_env["FACELABEL_DB_URL"])
    beat = start_beat(stack_env, tmp_path / "beat.log")
    try:
        first = workers("doomed")
        result = facelabel(stack_env, "enqueue", str(tmp_path / "photos"), "--aligned")
        assert result.returncode == 0, result.stderr
        job_id = int(result.stdout.strip())

        def finished():
            with engine.connect() as connection:
                return connection.execute(
                    select(func.count()).where(JobItem.job_id == job_id, JobItem.status != "pending")
                ).scalar()

        wait_for(lambda: finished() >= 48, timeout=120, interval=0.02, what="the first worker's progress")
        first.kill()
        done_at_kill = finished()
        assert 0 < done_at_kill < count, "the worker finished before it could be killed"

        workers("rescuer")
        wait_for(
            lambda: job_status(engine, job_id) == "complete",
            timeout=180,
            interval=0.5,
            what="the job to complete",
        )
    finally:
        beat.terminate()
        beat.wait(timeout=30)
    with engine.connect() as connection:
        per_image = connection.execute(
            text(
                "SELECT f.path, count(r.id) FROM job_items i JOIN files f ON f.id = i.file_id "
                "LEFT JOIN results r ON r.image_id = f.image_id WHERE i.job_id = :job GROUP BY f.path"
            ),
            {"job": job_id},
        ).all()
        assert connection.execute(select(func.count()).select_from(Result)).scalar() == count
    assert len(per_image) == count
    assert {n for _, n in per_image} == {1}
    statuses = facelabel(stack_env, "job", str(job_id), "--format", "json").stdout
    assert '"done": 320' in statuses and '"failed": 0' in statuses


def job_status(engine, job_id):
    with engine.connect() as connection:
        return connection.execute(select(Job.status).where(Job.id == job_id)).scalar()


@pytest.fixture
def ledger_env(stack_env):
    """Redelivery left to the ledger: the broker's own visibility timeout at its default."""
    return {k: v for k, v in stack_env.items() if k != "FACELABEL_VISIBILITY_TIMEOUT"}


def test_a_killed_worker_s_chunk_is_sent_again_by_the_ledger_within_a_minute(tmp_path, ledger_env):
    count = 800
    images.folder_of_images(tmp_path / "photos", count)
    engine = create_engine(ledger_env["FACELABEL_DB_URL"])
    doomed = WorkerProcess("doomed", ledger_env, tmp_path / "doomed.log")
    beat = start_beat(ledger_env, tmp_path / "beat.log")
    rescuer = None
    try:
        job_id = int(facelabel(ledger_env, "enqueue", str(tmp_path / "photos"), "--aligned").stdout.strip())
        wait_for(
            lambda: _finished(engine, job_id) >= 48 and _claimed(engine, job_id),
            timeout=120,
            interval=0.01,
            what="progress, with a chunk in the worker's hands",
        )
        doomed.kill()  # that chunk's message stays unacknowledged for the 900 s visibility timeout
        killed_at = time.monotonic()
        assert _finished(engine, job_id) < count, "the worker finished before it could be killed"
        rescuer = WorkerProcess("rescuer", ledger_env, tmp_path / "rescuer.log")
        wait_for(
            lambda: job_status(engine, job_id) == "complete", timeout=150, interval=0.5, what="completion"
        )
        took = time.monotonic() - killed_at
        print(f"complete {took:.1f} s after the kill")
    finally:
        for process in (rescuer,):
            if process is not None:
                process.stop()
        beat.terminate()
        beat.wait(timeout=30)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Result)).scalar() == count
    assert took < 60 + 20, f"complete {took:.0f} s after the kill (worker start-up included)"


def test_chunks_a_restarted_broker_lost_are_sent_again(tmp_path, ledger_env):
    """Redis without persistence restarting looks like this: every queued message gone."""
    import redis

    images.folder_of_images(tmp_path / "photos", 64)
    engine = create_engine(ledger_env["FACELABEL_DB_URL"])
    job_id = int(facelabel(ledger_env, "enqueue", str(tmp_path / "photos"), "--aligned").stdout.strip())
    redis.Redis.from_url(ledger_env["FACELABEL_BROKER_URL"]).flushdb()
    beat = start_beat(ledger_env, tmp_path / "beat.log")
    worker = WorkerProcess("w1", ledger_env, tmp_path / "w1.log")
    try:
        wait_for(
            lambda: job_status(engine, job_id) == "complete", timeout=150, interval=0.5, what="completion"
        )
    finally:
        worker.stop()
        beat.terminate()
        beat.wait(timeout=30)
    assert _finished(engine, job_id) == 64


def _claimed(engine, job_id):
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM chunks WHERE job_id = :job AND status = 'claimed'"), {"job": job_id}
        ).scalar()


def _finished(engine, job_id):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(JobItem.job_id == job_id)).scalar()
