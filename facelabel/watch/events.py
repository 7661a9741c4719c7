"""Filesystem events from watchdog, one watch per root: inotify where the kernel delivers
events, polling where it does not (network shares, FUSE, overlays, ``--poll``) or where
inotify runs out of watches."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import queue
from typing import Callable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from facelabel.watch.mounts import polling_reason
from facelabel.watch.timing import POLL

WANTED = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
    EventsLostEvent,
]
WATCH_LIMIT = (
    "{root}: past inotify's watch limit; polling it instead "
    "(raise it with: sysctl fs.inotify.max_user_watches=1048576)"
)


@dataclasses.dataclass(frozen=True)
class Event:
    """What the watcher needs to hear. ``kind``: created, modified, closed, moved, deleted or
    lost (watchdog's events); limit (a folder past inotify's watch limit); found or scan
    (from the watcher's own background work). A move's ``source`` or ``destination`` is "" when
    it lies outside the watch (moved in, or away)."""

    kind: str
    source: str
    destination: str = ""
    directory: bool = False
    polled: bool = False  # from a polling watch: no close events will come


LIMITS = (errno.ENOSPC, errno.EMFILE)  # out of inotify watches, or of inotify instances


class _Forward(FileSystemEventHandler):
    def __init__(self, events: queue.Queue, polled: bool):
        self._events, self._polled = events, polled

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_synthetic:  # contents of a moved or created folder: the folder's event covers them
            return
        kind = "lost" if isinstance(event, EventsLostEvent) else event.event_type
        self._events.put(
            Event(kind, _text(event.src_path), _text(event.dest_path), event.is_directory, self._polled)
        )


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)  # watchdog's own log names folders in bytes


class Watches:
    """The roots' watches; ``events`` receives their Events."""

    def __init__(self, events: queue.Queue, poll_seconds: float | None, say: Callable[[str], None]):
        self.events = events
        self._forced = poll_seconds is not None
        self._inotify = InotifyObserver(generate_full_events=True)
        self._polling = PollingObserver(timeout=poll_seconds or POLL)
        self._watches: dict[str, tuple[object, object]] = {}
        self._say = say
        self._limit = _WatchLimit(events)
        logging.getLogger("watchdog.observers.inotify").addFilter(self._limit)
        self._inotify.start()
        self._polling.start()

    def watch(self, root: str, *, poll: bool = False) -> bool:
        """Start watching ``root`` (by polling with ``poll``); True when it is polled."""
        reason = "--poll" if self._forced or poll else polling_reason(root)
        if reason is None:
            try:
                handle = self._inotify.schedule(
                    _Forward(self.events, False), root, recursive=True, event_filter=WANTED
                )
                self._watches[root] = (self._inotify, handle)
                return False
            except OSError as exc:
                if exc.errno not in LIMITS:
                    raise
                self._say(WATCH_LIMIT.format(root=root))
        elif reason != "--poll":
            self._say(f"{root}: polling ({reason})")
        handle = self._polling.schedule(
            _Forward(self.events, True), root, recursive=True, event_filter=WANTED
        )
        self._watches[root] = (self._polling, handle)
        return True

    def unwatch(self, root: str) -> None:
        observer, handle = self._watches.pop(root, (None, None))
        if observer is not None:
            try:
                observer.unschedule(handle)
            except (KeyError, OSError):  # its emitter stopped when the folder went
                pass

    def close(self) -> None:
        logging.getLogger("watchdog.observers.inotify").removeFilter(self._limit)
        for observer in (self._inotify, self._polling):
            observer.stop()
        for observer in (self._inotify, self._polling):
            observer.join()


class _WatchLimit(logging.Filter):
    """watchdog logs, rather than raises, a watch it could not add for a folder created after
    the start: past the limit, that becomes a "limit" Event (and no log line of its own)."""

    def __init__(self, events: queue.Queue):
        super().__init__()
        self._events = events

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        if str(record.msg).startswith("Unable to watch") and getattr(error, "errno", None) in LIMITS:
            self._events.put(Event("limit", _text(record.args[0])))
            return False
        return True
