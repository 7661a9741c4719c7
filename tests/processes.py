"""Start and stop real ``facelabel worker`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


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


def wait_for(
    condition: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
