"""The watch loop: events in, complete files grouped into jobs out, a catch-up scan on start,
when a root comes back and every rescan interval. Roots that vanish are waited for; nothing
is ever deleted or marked gone because a folder went away.

One thread reads events, stats pending files and looks at the roots; one background thread
does everything that touches the database (moves, jobs, scans), one piece at a time.
"""

from __future__ import annotations

import collections
import os
import queue
import stat
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

from db.files import move_files
from facelabel.confined import inside
from facelabel.watch.arrivals import Arrivals, is_partial
from facelabel.watch.catchup import BLOCK, Found, catch_up, unsettled
from facelabel.watch.events import WATCH_LIMIT, Event, Watches
from facelabel.watch.labellers import Labeller
from facelabel.watch.timing import CHECK, GROUP_QUIET, GROUP_WAIT, HEARTBEAT, RESCAN, SETTLE, UNCLOSED

JOB_FILES = 2000  # files in one job at most: a burst of thousands is a handful of jobs


class Watcher:
    """Label what arrives under ``roots`` through ``labeller`` until ``run``'s stop is set."""

    def __init__(
        self,
        roots: Sequence[str],
        labeller: Labeller,
        *,
        poll: float | None = None,
        rescan: float = RESCAN,
        say: Callable[[str], None] = print,
        heartbeat: Path | None = None,
    ):
        self.roots = list(roots)
        self.heartbeat = heartbeat  # touched while the loop runs (a container's healthcheck)
        self.labeller, self.poll, self.rescan, self.say = labeller, poll, rescan, say
        self.events: queue.Queue[Event] = queue.Queue()
        self.arrivals = Arrivals()
        self._ready: dict[str, float] = {}  # complete files waiting for a job, and since when
        self._found: set[str] = set()  # of those, files a scan met: labelled meanwhile perhaps
        self._moves: list[Event] = []
        self._scans: collections.deque[str] = collections.deque()  # folders to scan, in turn
        self._scanning: tuple[str, Iterator[Found]] | None = None  # the scan under way
        self._scanned = False  # the background thread's last step finished the scan under way
        self._stepping = False  # the work in hand is a step of that scan
        self._present: dict[str, tuple[int, int] | None] = {}
        self._polled: set[str] = set()
        self._work: Future | None = None
        self._idle_at = 0.0  # when the labeller last said it was busy
        self.rescans = 0  # scans of a whole root finished
        self._closed = False  # a file was reported closed since the last look

    @property
    def polled(self) -> set[str]:
        """The roots watched by polling."""
        return set(self._polled)

    def run(self, stop: threading.Event) -> None:
        self._watches = Watches(self.events, self.poll, self.say)
        background = ThreadPoolExecutor(1, thread_name_prefix="watch-jobs")
        try:
            for root in self.roots:
                self._look_at(root)
            self.say(f"watching {', '.join(self.roots)}; new files are labelled as they arrive")
            next_check = last_rescan = time.monotonic()
            last_beat = -HEARTBEAT
            while not stop.is_set():
                self._take_events(timeout=0.1)
                now = time.monotonic()
                if now >= next_check or self._closed:
                    next_check, self._closed = now + CHECK, False
                    for root in self.roots:
                        self._look_at(root)
                    for path in self.arrivals.ready(now):
                        self._ready.setdefault(path, now)
                if self.heartbeat is not None and now >= last_beat + HEARTBEAT:
                    last_beat = now
                    self.heartbeat.touch()
                if now >= last_rescan + self.rescan:
                    last_rescan = now
                    for root in self.roots:
                        self._queue_scan(root)
                self._dispatch(background, now)
        finally:
            if self.heartbeat is not None:
                self.heartbeat.unlink(missing_ok=True)
            self._watches.close()
            background.shutdown(wait=True)
            self._finish()

    # -- events (this thread) -------------------------------------------------------------

    def _take_events(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._on(event, time.monotonic())
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _on(self, event: Event, now: float) -> None:
        quiet = SETTLE if event.polled else UNCLOSED
        if event.kind == "lost":  # the kernel's queue overflowed: events were dropped
            self._queue_scan(self._root_of(event.source) or event.source)
        elif event.kind == "limit":
            self._poll_instead(self._root_of(event.source))
        elif event.kind == "found":  # a scan met a file still being written
            if event.source not in self.arrivals and event.source not in self._ready:  # else: events came
                self.arrivals.changed(event.source, now, SETTLE)
                self._found.add(event.source)
        elif event.kind == "scan":  # a folder moved: what was not labelled under it yet
            self._queue_scan(event.source)
        elif event.kind == "deleted":
            self._drop(event.source)
        elif event.kind == "moved":
            self._on_move(event, now)
        elif event.directory:
            if event.kind == "created":  # files written before its watch began have no events
                self._queue_scan(event.source)
        elif is_partial(event.source):
            return
        elif event.kind in ("created", "modified"):
            self.arrivals.changed(event.source, now, quiet)
        elif event.kind == "closed":
            self.arrivals.closed(event.source, now, quiet)
            self._closed = True  # complete now: no need to wait for the next look

    def _on_move(self, event: Event, now: float) -> None:
        source, destination = event.source, event.destination
        if event.directory:  # its recorded paths follow it, then a scan of it
            self._drop(source)
            if destination:
                self._moves.append(event)
        elif not destination or is_partial(destination):  # moved away, or under a partial name
            self._drop(source)
        elif self.arrivals.moved(source, destination):  # renamed while still being written
            return
        elif source in self._ready:  # renamed while waiting for its job
            del self._ready[source]
            self._ready[destination] = now
        elif not source or is_partial(source):  # moved in, or renamed into place once whole
            self.arrivals.closed(destination, now, SETTLE)
            self._closed = True
        else:
            self._moves.append(event)

    def _drop(self, path: str) -> None:
        """Stop waiting for ``path`` and whatever is under it."""
        self.arrivals.forget(path)
        for waiting in [p for p in self._ready if inside(p, [path])]:
            del self._ready[waiting]
        self._found = {p for p in self._found if not inside(p, [path])}

    # -- roots (this thread) --------------------------------------------------------------

    def _look_at(self, root: str) -> None:
        """Notice a root that went, came back or was replaced (a remount), and act on it."""
        try:
            info = os.stat(root)
            identity = (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None
        except OSError:
            identity = None
        if root in self._present and identity == self._present[root]:
            return
        first = root not in self._present
        before = self._present.get(root)
        self._present[root] = identity
        self._watches.unwatch(root)
        self._polled.discard(root)
        if identity is None:
            self._drop(root)
            if first:
                self.say(f"{root}: not there yet; waiting for it")
            else:
                self.say(f"{root}: gone (unmounted or moved?); waiting for it, its results are kept")
            return
        if not first:
            change = "is back" if before is None else "is another folder now (remounted?)"
            self.say(f"{root}: {change}; catching up")
        if self._watches.watch(root):
            self._polled.add(root)
        self._queue_scan(root)

    def _poll_instead(self, root: str | None) -> None:
        if root is None or root in self._polled or self._present.get(root) is None:
            return
        self.say(WATCH_LIMIT.format(root=root))
        self._watches.unwatch(root)
        self._watches.watch(root, poll=True)
        self._polled.add(root)
        self._queue_scan(root)  # the folders inotify missed

    def _root_of(self, path: str) -> str | None:
        return next((root for root in self.roots if inside(path, [root])), None)

    def _queue_scan(self, folder: str) -> None:
        """Scan ``folder`` once the scans before it are done (one under way lists it again)."""
        if folder not in self._scans:
            self._scans.append(folder)

    # -- jobs (the background thread) -----------------------------------------------------

    def _dispatch(self, background: ThreadPoolExecutor, now: float) -> None:
        """Hand the background thread its next piece of work once it is free: moves first,
        then a job of new files when due, then a step of a scan."""
        if self._work is not None:
            if not self._work.done():
                return
            self._report(self._work)
            self._work = None
        if self._moves:
            moves, self._moves = self._moves, []
            self._work = background.submit(self._move, moves)
        elif self._ready and self._due(now):
            files = list(self._ready)[:JOB_FILES]
            for path in files:
                del self._ready[path]
            found = self._found.intersection(files)
            self._found -= found
            self._work = background.submit(self._label, files, found)
        elif (self._scanning or self._scans) and self._labeller_idle(now):
            if self._scanning is None:
                folder = self._scans.popleft()
                self._scanning = (
                    folder,
                    catch_up(folder, self.labeller.settled, recent_seconds=SETTLE, pending=self._waiting),
                )
            self._work, self._stepping = background.submit(self._scan_step, self._scanning[1]), True

    def _waiting(self, path: str) -> bool:
        """``path`` is on its way to a job already."""
        return path in self.arrivals or path in self._ready

    def _labeller_idle(self, now: float) -> bool:
        if now - self._idle_at < 1.0:  # asked within the second: busy still
            return False
        if self.labeller.idle():
            return True
        self._idle_at = now
        return False

    def _due(self, now: float) -> bool:
        oldest, newest = next(iter(self._ready.values())), next(reversed(self._ready.values()))
        return len(self._ready) >= JOB_FILES or now - newest >= GROUP_QUIET or now - oldest >= GROUP_WAIT

    def _label(self, files: list[str], found: set[str]) -> str | None:
        """One job of ``files``; those a scan ``found`` only if no job labelled them since."""
        if found:
            fresh = unsettled(list(found), self.labeller.settled)
            files = [path for path in files if path not in found or path in fresh]
        return self.labeller.label(self.roots, files) if files else None

    def _move(self, moves: list[Event]) -> str | None:
        """Paths the database knows follow their files (a folder moved in from outside has
        none); then what was not labelled yet under the new names is."""
        with self.labeller.sessions.begin() as session:
            for event in moves:
                if event.source:
                    move_files(session, event.source, event.destination)
        for event in moves:
            if event.directory:
                self.events.put(Event("scan", event.destination))
        files = [event.destination for event in moves if not event.directory]
        todo = []
        for start in range(0, len(files), BLOCK):
            block = files[start : start + BLOCK]
            outcomes = self.labeller.settled(block)
            todo += [path for path in block if path not in outcomes and os.path.isfile(path)]
        return self.labeller.label(self.roots, todo) if todo else None

    def _scan_step(self, found: Iterator[Found]) -> str | None:
        """Label up to JOB_FILES more of a scan's files (``_scanned`` once it is through)."""
        todo: list[str] = []
        for block in found:
            todo += block.todo
            for path in block.recent:
                self.events.put(Event("found", path))
            if len(todo) >= JOB_FILES:
                break
        else:
            self._scanned = True
        return self.labeller.label(self.roots, todo) if todo else None

    def _report(self, work: Future) -> None:
        try:
            line = work.result()
        except Exception as exc:  # the database or the broker away: the next scan catches up
            line = f"could not label this batch ({type(exc).__name__}: {exc}); the next rescan retries"
            self._scanned = self._stepping  # a scan that failed is given up: the next one retries
        if self._scanned:
            self.rescans += self._scanning[0] in self.roots
            self._scanning, self._scanned = None, False
        self._stepping = False
        if line:
            self.say(line)

    def _finish(self) -> None:
        if self._work is not None:
            self._report(self._work)
