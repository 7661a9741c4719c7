"""The compose topology as local processes (deploy/stack.py, ``make stack``) against the real
Redis and PostgreSQL: two label workers share a job, a trainer consumes ``train``, beat runs,
each worker's metrics add up, and stopping leaves no process behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from db.models import Result
from deploy.stack import LocalStack
from tests import images
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free ports")


def labelled(url: str) -> float:
    page = urllib.request.urlopen(url, timeout=5).read().decode()
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "facelabel_images_total" and sample.labels == {"outcome": "labelled"}:
                return sample.value
    return 0.0


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_share_a_job_and_everything_stops(tmp_path, pg_url, redis_url):
    count = 96
    images.folder_of_images(tmp_path / "photos", count)
    env = {
        "FACELABEL_DB_URL": pg_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "4",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    stack = LocalStack(
        env, tmp_path / "stack", workers=2, metrics_port=free_port_pair(), web_port=free_port_pair()
    )
    try:
        stack.start()
        queues = stack.wait_ready()
        host = os.uname().nodename
        assert queues[f"worker1@{host}"] == ["label"] and queues[f"worker2@{host}"] == ["label"]
        assert queues[f"trainer@{host}"] == ["train"]
        wait_for(
            lambda: "beat: Starting" in (tmp_path / "stack" / "beat.log").read_text(),
            timeout=60,
            what="beat to start",
        )

        result = subprocess.run(
            [sys.executable, "-m", "facelabel", "enqueue", str(tmp_path / "photos"), "--aligned", "--wait"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert f"complete: {count} images, {count} faces, 0 failures" in result.stdout

        engine = create_engine(pg_url)
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Result)).scalar() == count
        engine.dispose()
        per_worker = [labelled(url) for url in stack.metrics_urls]
        assert all(n > 0 for n in per_worker), f"a worker took no chunk: {per_worker}"
        assert sum(per_worker) == count
        for name in ("worker1", "worker2"):  # the healthcheck's liveness file is fresh
            assert time.time() - (tmp_path / "stack" / f"{name}.heartbeat").stat().st_mtime < 30
        jobs_page = urllib.request.urlopen(stack.web_url + "/jobs", timeout=30).read().decode()
        assert f'<a href="/faces?job=1">{count}</a>' in jobs_page  # the review app sees the job's faces
        import redis

        assert redis.Redis.from_url(redis_url).config_get("appendonly")["appendonly"] == "yes"
        pids = [int(line.split()[1]) for line in (tmp_path / "stack" / "stack.pids").read_text().splitlines()]
        assert len(pids) == 5
    finally:
        stack.stop()
    assert not [pid for pid in pids if group_alive(pid)]


def test_flower_as_compose_runs_it_asks_for_the_password(tmp_path, redis_url):
    """The compose ``flower`` command line: basic auth from FLOWER_BASIC_AUTH."""
    import base64
    import urllib.error

    port = free_port_pair()
    log = open(tmp_path / "flower.log", "wb")
    flower = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "--broker", redis_url, "flower", f"--port={port}"],
        env={**os.environ, "FLOWER_BASIC_AUTH": "ops:s3cret"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/workers"

    def status(credentials: str | None) -> int:
        request = urllib.request.Request(url)
        if credentials:
            request.add_header("Authorization", "Basic " + base64.b64encode(credentials.encode()).decode())
        try:
            return urllib.request.urlopen(request, timeout=5).status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    try:
        wait_for(lambda: status(None) != 0, timeout=60, interval=0.5, what="Flower to listen")
        assert status(None) == 401
        assert status("ops:wrong") == 401
        assert status("ops:s3cret") == 200
    finally:
        os.killpg(flower.pid, 15)
        try:
            flower.wait(timeout=30)
        except subprocess.TimeoutExpired:  # Flower can sit on a broadcast to workers: not what is tested here
            os.killpg(flower.pid, 9)
            flower.wait(timeout=30)
        log.close()
