"""Scaled GPU workers each lease their own GPU in the real Redis (worker/gpu_lease.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.helpers import WorkerProcess, wait_for
from worker.gpu_lease import GpuError, lease_gpu


def test_each_lease_gets_its_own_gpu_until_all_are_taken(redis_url):
    first = lease_gpu(redis_url, ("0", "1"), node="n1")
    second = lease_gpu(redis_url, ("0", "1"), node="n1")
    assert (first.index, second.index) == ("0", "1")
    with pytest.raises(GpuError, match=r"all 2 GPUs of node 'n1' \(0, 1\) are leased"):
        lease_gpu(redis_url, ("0", "1"), node="n1")
    assert lease_gpu(redis_url, ("0", "1"), node="n2").index == "0"  # another machine's GPU 0
    first.release()
    assert lease_gpu(redis_url, ("0", "1"), node="n1").index == "0"


def test_a_lease_lives_while_renewed_and_expires_when_its_worker_dies(redis_url):
    held = lease_gpu(redis_url, ("0",), node="n1", ttl=2)
    time.sleep(3.5)  # renewed every ~0.7 s: still held
    with pytest.raises(GpuError):
        lease_gpu(redis_url, ("0",), node="n1")
    held._stopped.set()  # the process died: nobody renews
    wait_for(
        lambda: _free(redis_url),
        timeout=10,
        interval=0.2,
        what="the dead worker's lease to expire",
    )


def _free(redis_url) -> bool:
    try:
        lease_gpu(redis_url, ("0",), node="n1").release()
        return True
    except GpuError:
        return False


@pytest.mark.slow
def test_second_worker_on_a_one_gpu_node_is_refused(tmp_path, redis_url, sqlite_url):
    env = {
        "FACELABEL_DB_URL": sqlite_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_GPU": "auto",
        "FACELABEL_GPU_IDS": "0",
        "FACELABEL_NODE": "box",
    }
    first = WorkerProcess("first", env, tmp_path / "first.log")
    try:
        wait_for(
            lambda: "worker uses GPU 0 of node box" in (tmp_path / "first.log").read_text(),
            timeout=60,
            what="the first worker to lease GPU 0",
        )
        second = subprocess.run(
            [sys.executable, "-m", "facelabel", "worker"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            "Error: all 1 GPUs of node 'box' (0) are leased by other workers: "
            "scale the workers down to the GPU count"
        ]
    finally:
        first.stop()
    assert lease_gpu(redis_url, ("0",), node="box").index == "0"  # released on shutdown
