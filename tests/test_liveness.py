"""The container healthcheck follows the children doing the work: a child stuck on a chunk
stops the worker's heartbeat; a dead child's leftover file does not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from facelabel.settings import get_settings
from worker import liveness


@pytest.fixture
def heartbeat(tmp_path, monkeypatch):
    path = tmp_path / "worker.heartbeat"
    monkeypatch.setenv("FACELABEL_HEARTBEAT_FILE", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_a_child_without_progress_for_two_minutes_is_stalled(heartbeat):
    with liveness.busy():
        busy = heartbeat.with_name(f"{heartbeat.name}.busy.{os.getpid()}")
        assert busy.exists() and liveness.stalled_children(heartbeat) == []
        old = time.time() - liveness.STALL_SECONDS - 5
        os.utime(busy, (old, old))
        assert liveness.stalled_children(heartbeat) == [os.getpid()]
        for _ in liveness.moving([1]):  # a photo moved: fresh again
            pass
        assert liveness.stalled_children(heartbeat) == []
    assert not busy.exists()  # the chunk is over


def test_a_dead_child_s_file_is_removed_not_counted(heartbeat):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    leftover = heartbeat.with_name(f"{heartbeat.name}.busy.{child.pid}")
    leftover.touch()
    os.utime(leftover, (0, 0))
    assert liveness.stalled_children(heartbeat) == [] and not leftover.exists()


def test_the_heartbeat_stops_while_a_child_is_stuck(heartbeat):
    from worker.health import Heartbeat

    beat = Heartbeat.__new__(Heartbeat)  # the bootstep without a Celery worker around it
    beat.path = heartbeat
    beat.touch()
    assert heartbeat.exists()
    os.utime(heartbeat, (1, 1))
    stuck = heartbeat.with_name(f"{heartbeat.name}.busy.{os.getpid()}")
    stuck.touch()
    os.utime(stuck, (1, 1))
    beat.touch()
    assert heartbeat.stat().st_mtime == 1  # not touched: the healthcheck will fail
    stuck.touch()
    beat.touch()
    assert heartbeat.stat().st_mtime > 1
