"""Files on their way in, held until complete: closed after writing (where the kernel says
so), renamed into place, or unchanged in size and mtime for a while. Partial downloads keep
names that are never labelled until they are renamed."""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator

# names browsers, curl, rsync and editors write under until the file is whole
PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", "~")


def is_partial(path: str) -> bool:
    """A download or copy still in progress (or a hidden file): wait for its rename."""
    name = os.path.basename(path)
    return name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES)


@dataclasses.dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # when this size and mtime were first seen
    quiet: float  # unchanged this long: complete
    closed: bool = False


class Arrivals:
    """Paths seen changing, until each is complete; ``ready()`` hands over the complete ones."""

    def __init__(self) -> None:
        self._pending: dict[str, _Seen] = {}

    def __contains__(self, path: str) -> bool:
        return path in self._pending

    def changed(self, path: str, now: float, quiet: float) -> None:
        """``path`` was written to; complete once closed, or once unchanged for ``quiet`` s."""
        seen = self._pending.get(path)
        if seen is None:
            self._pending[path] = _Seen(-1, -1, now, quiet)
        else:
            seen.closed, seen.quiet = False, min(seen.quiet, quiet)

    def closed(self, path: str, now: float, quiet: float) -> None:
        """The kernel reports ``path`` closed after writing: complete unless it is empty."""
        self.changed(path, now, quiet)
        self._pending[path].closed = True

    def moved(self, source: str, destination: str) -> bool:
        """A pending file was renamed (False if ``source`` was not pending)."""
        seen = self._pending.pop(source, None)
        if seen is not None:
            self._pending[destination] = seen
        return seen is not None

    def forget(self, path: str) -> None:
        """``path`` was deleted or moved away: the file and everything under it."""
        self._pending.pop(path, None)
        prefix = path.rstrip(os.sep) + os.sep
        for pending in [p for p in self._pending if p.startswith(prefix)]:
            del self._pending[pending]

    def ready(self, now: float) -> Iterator[str]:
        """Complete files (removed from the pending ones). Files gone meanwhile are dropped;
        empty ones wait (a writer often creates a file before it writes)."""
        for path, seen in list(self._pending.items()):
            try:
                info = os.stat(path)
            except OSError:
                del self._pending[path]
                continue
            if (info.st_size, info.st_mtime_ns) != (seen.size, seen.mtime_ns):
                seen.size, seen.mtime_ns, seen.since = info.st_size, info.st_mtime_ns, now
                if not seen.closed:
                    continue
            if info.st_size and (seen.closed or now - seen.since >= seen.quiet):
                del self._pending[path]
                yield path
