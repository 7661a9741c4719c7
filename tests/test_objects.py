"""Photos in object storage: ``label`` and ``enqueue`` of ``s3://bucket/prefix/``, results
keyed by content, keys confined to the job's roots, missing and oversized objects as failure
rows, a store stopped mid-job, credentials kept out of output, rows and messages.

No S3-compatible server installs here from Debian or PyPI, so the store is moto's server
mode (``moto.server.ThreadedMotoServer``) over HTTP on 127.0.0.1: a stand-in that speaks the
S3 protocol to s3fs and botocore as MinIO or S3 would, found through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from db.models import JobItem, Result
from facelabel.cli import main
from facelabel.confined import ReadError, read_confined
from tests import images
from tests.helpers import WorkerProcess, wait_for
from tests.test_workers import facelabel, job_status

SECRET_KEY = "wJalrXUtnFEMI-not-a-real-secret-K7MDENG"
KEY_ID = "AKIAFACELABELTESTKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Store:
    """moto's S3 server on a fixed loopback port, stopped and started again at will (its
    objects live in this process, so they outlast a restart)."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = lambda: ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.start()

    def start(self) -> None:
        self.server = self._server()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def store():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    env = {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        server = Store()
        patch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        yield server
        server.stop()


def bucket_of(store, name: str, tmp_path: Path, count: int, prefix: str = "2024/") -> list[str]:
    """A bucket holding ``count`` small distinct PNGs under ``prefix``; their keys."""
    client = store.client()
    client.create_bucket(Bucket=name)
    keys = []
    for path in images.folder_of_images(tmp_path / name, count):
        keys.append(f"{prefix}{path.name}")
        client.put_object(Bucket=name, Key=keys[-1], Body=path.read_bytes())
    return keys


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rows_of(url: str, *options) -> list[dict]:
    result = run("--db", url, "query", "--format", "json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_label_a_bucket_prefix_and_query_its_urls(store, tmp_path, sqlite_url):
    keys = bucket_of(store, "photos", tmp_path, 6)
    store.client().put_object(Bucket="photos", Key="2024/notes.txt", Body=b"not a photo")
    store.client().put_object(Bucket="photos", Key="2023/old.png", Body=b"outside the prefix")
    result = run("--db", sqlite_url, "label", "s3://photos/2024/", "--aligned")
    assert result.exit_code == 0, result.output
    assert "6 images, 6 faces, 0 failures, 1 skipped" in result.output
    rows = rows_of(sqlite_url, "--path", "s3://photos/2024/*")
    assert sorted(r["path"] for r in rows) == [f"s3://photos/{k}" for k in keys]
    assert rows_of(sqlite_url, "--path", "s3://photos/2023/*") == []
    assert SECRET_KEY not in result.output and KEY_ID not in result.output


def test_an_object_under_two_keys_runs_through_the_model_once(store, tmp_path, sqlite_url):
    from prometheus_client import REGISTRY

    def classified() -> float:
        return REGISTRY.get_sample_value("facelabel_faces_total") or 0.0

    (key,) = bucket_of(store, "copies", tmp_path, 1)
    client = store.client()
    client.copy_object(Bucket="copies", Key="2024/copy.png", CopySource={"Bucket": "copies", "Key": key})
    before = classified()
    assert run("--db", sqlite_url, "label", "s3://copies/2024", "--aligned").exit_code == 0
    assert classified() == before + 1
    assert len(rows_of(sqlite_url)) == 2
    with create_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("select count(*) from results")).scalar() == 1


def test_keys_outside_the_job_s_roots_are_refused_without_a_read(store, tmp_path):
    bucket_of(store, "inside", tmp_path, 1, prefix="job/")
    store.client().create_bucket(Bucket="elsewhere")
    store.client().put_object(Bucket="elsewhere", Key="job/secret.png", Body=b"x")
    store.client().put_object(Bucket="inside", Key="secret.png", Body=b"x")
    roots = ["s3://inside/job"]
    crafted = [
        "s3://inside/job/../secret.png",
        "s3://inside/job/%2e%2e/secret.png",
        "s3://inside/job/%252e%252e/secret.png",
        "s3://inside/job//../secret.png",
        "s3://elsewhere/job/secret.png",
        "s3://inside/jobs/secret.png",
        "gs://inside/job/secret.png",
        "s3://user:pass@inside/job/secret.png",
        "s3://inside/job/secret.png?versionId=1",
    ]
    for url in crafted:
        with pytest.raises(ReadError, match="^refused"):
            read_confined(url, roots, max_bytes=1000)
    assert read_confined("s3://inside/job/img_00000.png", roots, max_bytes=100_000)


def test_a_worker_s_data_roots_bound_object_reads(store, tmp_path):
    bucket_of(store, "bounded", tmp_path, 1, prefix="a/")
    with pytest.raises(ReadError, match="FACELABEL_DATA_ROOTS"):
        read_confined(
            "s3://bounded/a/img_00000.png", ["s3://bounded"], max_bytes=10**6, data_roots=["s3://bounded/b"]
        )


def test_data_roots_take_url_prefixes_beside_folders(store, tmp_path, sqlite_url, monkeypatch):
    from facelabel.settings import get_settings

    bucket_of(store, "rooted", tmp_path, 1, prefix="a/")
    monkeypatch.setenv("FACELABEL_DATA_ROOTS", f"{tmp_path}:s3://rooted/a/:/srv")
    get_settings.cache_clear()
    try:
        assert get_settings().data_roots == (tmp_path.resolve(), "s3://rooted/a", Path("/srv"))
        refused = run("--db", sqlite_url, "label", "s3://rooted/", "--aligned")
        assert run("--db", sqlite_url, "label", "s3://rooted/a/", "--aligned").exit_code == 0
        assert len(rows_of(sqlite_url)) == 1
    finally:
        monkeypatch.delenv("FACELABEL_DATA_ROOTS")
        get_settings.cache_clear()
    assert refused.exit_code == 1
    assert refused.output.strip().startswith("Error: s3://rooted is outside FACELABEL_DATA_ROOTS")


def test_a_missing_and_a_too_large_object_are_failure_rows(store, tmp_path, sqlite_url):
    """Objects handed to a job as the watcher hands files (one gone since it was seen)."""
    from facelabel.cli.common import sessions_for
    from facelabel.settings import Settings
    from worker.labeling import label_chunk
    from worker.submit import submit_job

    (key,) = bucket_of(store, "limits", tmp_path, 1)
    store.client().put_object(Bucket="limits", Key="2024/huge.png", Body=b"\x89PNG" + b"0" * 200_000)
    settings = Settings(db_url=sqlite_url, max_file_bytes=100_000)
    sessions = sessions_for(settings)
    files = [f"s3://limits/{key}", "s3://limits/2024/huge.png", "s3://limits/2024/gone.png"]
    submit_job(
        sessions,
        ["s3://limits/2024/"],
        settings=settings,
        aligned=True,
        batch_size=None,
        model=None,
        send=lambda job_id, chunk, chunk_id: label_chunk(
            sessions, job_id, chunk, settings=settings, chunk_id=chunk_id
        ),
        files=files,
    )
    failures = run("--db", sqlite_url, "failures", "--format", "json")
    reasons = {r["path"]: r["reason"] for r in json.loads(failures.stdout)}
    assert reasons == {
        "s3://limits/2024/huge.png": "file too large: 200004 bytes (limit 100000)",
        "s3://limits/2024/gone.png": "file not found",
    }
    assert [r["path"] for r in rows_of(sqlite_url)] == [files[0]]


def test_a_url_naming_nothing_is_a_one_line_error(store, sqlite_url):
    store.client().create_bucket(Bucket="empty")
    for url, reason in (
        ("s3://empty/2024/", "no object or prefix of that name"),
        ("s3://no-such-bucket/x/", "file not found"),
        ("s3://empty/a/../b/", "refused"),
    ):
        result = run("--db", sqlite_url, "label", url, "--aligned")
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith("Error: ") and reason in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_store_that_never_answers_is_an_outage_within_the_call_timeout(store, monkeypatch):
    """A dead link: connections accepted, nothing answered (as when packets are dropped)."""
    from s3fs import S3FileSystem

    from facelabel import storage

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{hole.getsockname()[1]}")
        monkeypatch.setattr(storage, "CALL_TIMEOUT", 2)
        S3FileSystem.clear_instance_cache()  # an instance made for the store would be reused
        started = time.monotonic()
        try:
            with pytest.raises(storage.StorageUnavailable, match="object store unavailable"):
                read_confined("s3://b/k.png", ["s3://b"], max_bytes=1000)
        finally:
            S3FileSystem.clear_instance_cache()
    assert time.monotonic() - started < 10


def test_xmp_under_out_mirrors_bucket_and_key_and_beside_refuses_urls(store, tmp_path, sqlite_url):
    keys = bucket_of(store, "sidecars", tmp_path, 2)
    assert run("--db", sqlite_url, "label", "s3://sidecars/2024/", "--aligned").exit_code == 0
    out = tmp_path / "xmp"
    assert run("--db", sqlite_url, "export", "--format", "xmp", "--out", out).exit_code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.xmp")) == [
        f"s3/sidecars/{k}.xmp" for k in keys
    ]
    beside = run("--db", sqlite_url, "export", "--format", "xmp", "--beside")
    assert f"s3://sidecars/{keys[0]}: in object storage: its sidecar goes under --out" in beside.output


def test_review_thumbnails_of_objects(store, tmp_path, sqlite_url):
    import re

    from starlette.testclient import TestClient

    from facelabel.cli.common import sessions_for
    from facelabel.settings import Settings
    from facelabel.web.app import create_app

    bucket_of(store, "review", tmp_path, 1)
    result = run("--db", sqlite_url, "label", "s3://review/2024/", "--aligned")
    assert result.exit_code == 0, result.output
    settings = Settings(db_url=sqlite_url, cache_dir=tmp_path / "cache")
    web = TestClient(create_app(settings, sessions_for(settings), token=None))
    (rid,) = re.findall(r'href="/face/(\d+)"', web.get("/faces").text)
    response = web.get(f"/thumb/{rid}.jpg")
    assert response.status_code == 200 and response.content[:2] == b"\xff\xd8"


@pytest.mark.slow
def test_enqueue_of_a_url_through_a_worker_survives_the_store_stopping(store, tmp_path, pg_url, redis_url):
    """The chunks in Redis carry URLs and no credential; the store stopped before the worker
    reads and started again on the same port 12 s later, past one read's patience (half the
    20 s visibility timeout), so the chunk itself is retried: every image labelled once, no
    failure rows, nothing blamed on the file in hand."""
    import redis

    count = 24
    bucket_of(store, "queued", tmp_path, count)
    env = {
        "FACELABEL_DB_URL": pg_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "8",
        "FACELABEL_VISIBILITY_TIMEOUT": "20",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    enqueued = facelabel(env, "enqueue", "s3://queued/2024/", "--aligned")
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = int(enqueued.stdout.strip())
    messages = b"".join(redis.Redis.from_url(redis_url).lrange("label", 0, -1))
    assert b"s3://queued/2024/img_00000.png" in messages
    for secret in (SECRET_KEY, KEY_ID, TOKEN):
        assert secret not in enqueued.stdout + enqueued.stderr
        assert secret.encode() not in messages
    store.stop()
    worker = WorkerProcess("w1", env, tmp_path / "w1.log")
    engine = create_engine(pg_url)
    log = tmp_path / "w1.log"
    try:
        wait_for(
            lambda: "object store unavailable" in log.read_text(),
            timeout=120,
            interval=0.5,
            what="the outage",
        )
        time.sleep(12)
    finally:
        store.start()
    try:
        wait_for(
            lambda: job_status(engine, job_id) == "complete", timeout=120, interval=0.5, what="completion"
        )
    finally:
        worker.stop()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Result)).scalar() == count
        failed = select(func.count()).where(JobItem.job_id == job_id, JobItem.status == "failed")
        assert connection.execute(failed).scalar() == 0
        dump = " ".join(
            str(row)
            for table in ("jobs", "chunks", "files", "job_items", "images")
            for row in connection.execute(text(f"select * from {table}"))
        )
    assert "StorageUnavailable" in log.read_text()  # the chunk's own retry was needed
    assert "s3://queued/2024/" in dump
    for secret in (SECRET_KEY, KEY_ID, TOKEN):
        assert secret not in dump and secret not in log.read_text()
