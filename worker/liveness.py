"""Whether a worker's children are moving: a child working on a chunk keeps
``HEARTBEAT_FILE.busy.<pid>`` fresh as photos pass through it; one whose file is older than
``STALL_SECONDS`` makes the worker's heartbeat stop, so the container reports unhealthy instead
of looking alive while its work hangs. No Celery here: embedded ``label`` runs this too."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from facelabel.settings import get_settings

STALL_SECONDS = 120.0
T = TypeVar("T")


def stalled_children(heartbeat: Path, now: float | None = None) -> list[int]:
    """Pids of live children whose busy file is stale; files of dead children are removed."""
    now = time.time() if now is None else now
    stuck = []
    for busy in heartbeat.parent.glob(heartbeat.name + ".busy.*"):
        pid = int(busy.name.rsplit(".", 1)[1])
        if not _alive(pid):
            busy.unlink(missing_ok=True)
        elif now - busy.stat().st_mtime > STALL_SECONDS:
            stuck.append(pid)
    return stuck


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def busy() -> Iterator[None]:
    """This process works on a chunk: its busy file exists (and is fresh) until the block ends."""
    path = _busy_path()
    if path is None:
        yield
        return
    path.touch()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def moving(items: Iterable[T]) -> Iterator[T]:
    """``items`` passed through, touching the busy file as each one arrives."""
    path = _busy_path()
    for item in items:
        if path is not None:
            path.touch()
        yield item


def _busy_path() -> Path | None:
    heartbeat = get_settings().heartbeat_file
    return None if heartbeat is None else heartbeat.with_name(f"{heartbeat.name}.busy.{os.getpid()}")
