"""Catching up with a folder: list it and keep only the files whose content has no standing
outcome recorded since they last changed, so a rescan of an unchanged tree costs a listing
and a query per block of paths, not reading or inference."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from itertools import islice
from typing import Callable, Iterator

from facelabel.watch.arrivals import is_partial
from worker.submit import ScanCounts, scan

BLOCK = 1000  # paths listed, stat'ed and looked up at a time


@dataclasses.dataclass
class Found:
    """One block of a scan: files to label now, and files changed too recently to be sure
    they are complete (they join the arrivals)."""

    todo: list[str]
    recent: list[str]


def catch_up(
    folder: str,
    settled: Callable[[list[str]], dict[str, dt.datetime]],
    *,
    recent_seconds: float,
    pending: Callable[[str], bool] = lambda path: False,
) -> Iterator[Found]:
    """The files under ``folder`` that need labelling, a block at a time. ``settled(paths)``
    says when each path's standing outcome was recorded: a file whose inode changed since
    (its content, or a chmod that makes it readable) is labelled again. Files ``pending``
    elsewhere are left to the watcher that holds them."""
    found = scan([folder], ScanCounts())
    while block := list(islice(found, BLOCK)):
        changed = unsettled([p for p in block if not is_partial(p) and not pending(p)], settled)
        now = time.time()
        todo, recent = [], []
        for path, info in changed.items():
            (recent if now - info.st_mtime < recent_seconds else todo).append(path)
        yield Found(todo, recent)


def unsettled(
    paths: list[str], settled: Callable[[list[str]], dict[str, dt.datetime]]
) -> dict[str, os.stat_result]:
    """The files among ``paths`` changed since their standing outcome (or without one), with
    their stat; files gone meanwhile are left out."""
    changed = {}
    for path in paths:
        try:
            changed[path] = os.stat(path)
        except OSError:
            continue
    outcomes = settled(list(changed))
    return {
        path: info
        for path, info in changed.items()
        if path not in outcomes or outcomes[path].timestamp() < info.st_ctime
    }
