"""Scheduled rescans of URL prefixes: ``facelabel rescan schedule`` stores a schedule that a
running beat picks up; each firing submits one job, which labels new objects and skips
content already labelled; a firing while the previous job runs or lists is skipped; URLs
outside FACELABEL_DATA_ROOTS are refused when scheduled. Object storage is moto's S3 server
on loopback, as in tests/test_objects.py."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from db.engine import open_database
from db.models import Job, Result, Schedule
from db.registry import resolve_model
from db.schedules import RESCAN, add_schedule
from facelabel.cli import main
from facelabel.settings import BUNDLED_MODEL, get_settings
from tests import images
from tests.helpers import WorkerProcess, start_beat, wait_for
from tests.test_objects import bucket_of, store  # noqa: F401  (store: the fixture)
from tests.test_workers import facelabel
from worker.lease import Lease
from worker.rescan import SCAN_LEASE, busy, rescan


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rescans(env) -> list[dict]:
    listed = facelabel(env, "rescan", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_a_url_outside_the_data_roots_is_refused_when_scheduled(sqlite_url, monkeypatch):
    monkeypatch.setenv("FACELABEL_DATA_ROOTS", "s3://photos/allowed/")
    get_settings.cache_clear()
    try:
        result = run("--db", sqlite_url, "rescan", "schedule", "s3://photos/other/", "--every", "60")
    finally:
        monkeypatch.delenv("FACELABEL_DATA_ROOTS")
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output == "Error: s3://photos/other is outside FACELABEL_DATA_ROOTS (s3://photos/allowed)\n"
    assert run("--db", sqlite_url, "rescan", "list", "--format", "json").output.strip() == "[]"


def test_watch_of_a_url_points_at_the_rescan_schedule(sqlite_url):
    result = run("--db", sqlite_url, "watch", "s3://photos/incoming/")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: watch follows local folders; rescan s3://photos/incoming/ on a schedule: "
        "facelabel rescan schedule s3://photos/incoming/ --every SECONDS"
    ]


def test_rescan_and_retrain_schedules_are_listed_and_removed_apart(sqlite_url):
    retrain = run("--db", sqlite_url, "retrain", "schedule", "--every", "3600").output.strip()
    scan = run(
        "--db", sqlite_url, "rescan", "schedule", "s3://photos/in/", "--cron", "*/5 * * * *"
    ).output.strip()
    listed = json.loads(run("--db", sqlite_url, "rescan", "list", "--format", "json").output)
    assert [(r["id"], r["urls"], r["when"]) for r in listed] == [(int(scan), "s3://photos/in", "*/5 * * * *")]
    assert [
        r["id"] for r in json.loads(run("--db", sqlite_url, "retrain", "list", "--format", "json").output)
    ] == [int(retrain)]
    assert run("--db", sqlite_url, "retrain", "remove", scan).output == f"Error: no schedule {scan}\n"
    assert (
        run("--db", sqlite_url, "rescan", "remove", retrain).output
        == f"Error: no rescan schedule {retrain}\n"
    )
    assert run("--db", sqlite_url, "rescan", "remove", scan).output == f"removed rescan schedule {scan}\n"


def test_a_firing_is_skipped_while_the_last_job_runs_or_the_last_scan_lists(pg_url, redis_url):
    settings = get_settings()
    sessions = open_database(pg_url)
    client = redis.Redis.from_url(redis_url)
    with sessions.begin() as session:
        version = resolve_model(session, None, fallback=BUNDLED_MODEL)
        job = Job(status="running", roots=["s3://photos/in"], options={}, model_version_id=version.id)
        session.add(job)
        session.flush()
        schedule = add_schedule(
            session, every_seconds=60, kind=RESCAN, options={"urls": ["s3://photos/in"], "aligned": True}
        )
        schedule.last_job_id = job.id
        ids = schedule.id, job.id

    def reason() -> str | None:
        with sessions() as session:
            return busy(session, client, session.get(Schedule, ids[0]))

    sent = []
    assert reason() == f"its job {ids[1]} is still running"
    assert rescan(sessions, settings, ids[0], client=client, send=lambda *chunk: sent.append(chunk)) is None
    with sessions.begin() as session:
        session.get(Job, ids[1]).status = "complete"
    assert reason() is None
    lease = Lease.take(client, SCAN_LEASE.format(ids[0]), ttl=60)
    try:
        assert reason() == "its previous rescan is still listing"
        assert (
            rescan(sessions, settings, ids[0], client=client, send=lambda *chunk: sent.append(chunk)) is None
        )
    finally:
        lease.release()
    assert sent == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_beat_runs_a_schedule_added_while_it_runs_and_labels_only_new_objects(
    store,  # noqa: F811
    tmp_path,
    pg_url,
    redis_url,
):
    """Beat and a worker as processes: the schedule added after beat started fires; the
    first job labels the prefix, a job over the unchanged prefix classifies no face, an
    object put between firings is labelled by the next job."""
    bucket_of(store, "rescans", tmp_path, 4)
    env = {
        "FACELABEL_DB_URL": pg_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "8",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    port = free_port()
    worker = WorkerProcess("w1", env, tmp_path / "w1.log", "--concurrency", "1", "--metrics-port", str(port))
    beat = start_beat(env, tmp_path / "beat.log")
    sessions = open_database(pg_url)

    def results() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(Result))

    def classified() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            lines = page.read().decode().splitlines()
        return sum(float(line.split()[-1]) for line in lines if line.startswith("facelabel_faces_total"))

    def next_job_done(after: int) -> int:
        """The id of the first complete job the schedule submitted after job ``after``."""

        def done() -> bool:
            with sessions() as session:
                jobs = session.scalars(select(Job).where(Job.id > after).order_by(Job.id)).all()
                return bool(jobs) and jobs[0].status == "complete"

        wait_for(done, timeout=120, interval=0.5, what=f"a rescan job after job {after}")
        with sessions() as session:
            return session.scalar(select(func.min(Job.id)).where(Job.id > after))

    try:
        wait_for(lambda: b"beat: Starting" in (tmp_path / "beat.log").read_bytes(), timeout=60, what="beat")
        scheduled = facelabel(env, "rescan", "schedule", "s3://rescans/2024/", "--every", "2", "--aligned")
        assert scheduled.returncode == 0, scheduled.stderr
        first = next_job_done(0)
        assert results() == 4
        assert rescans(env)[0]["last_job"] >= first
        faces = classified()
        second = next_job_done(first)
        assert classified() == faces and results() == 4
        (extra,) = images.folder_of_images(tmp_path / "extra", 1, start_seed=1)
        store.client().put_object(Bucket="rescans", Key="2024/extra.png", Body=extra.read_bytes())
        wait_for(lambda: results() == 5, timeout=120, interval=0.5, what="the new object's result")
        assert classified() == faces + 1
        with sessions() as session:
            jobs = session.scalars(select(Job).where(Job.id > second)).all()
            assert all(j.roots == ["s3://rescans/2024"] for j in jobs)
        assert facelabel(env, "rescan", "remove", scheduled.stdout.strip()).returncode == 0
    finally:
        beat.terminate()
        beat.wait(timeout=30)
        worker.stop()
