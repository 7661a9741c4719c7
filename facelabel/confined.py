"""Reading image files for a job: only inside the roots the job names, with plain reasons."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Sequence

from facelabel import storage
from facelabel.errors import NOT_FOUND, ReadError


def inside(path: str, roots: Sequence[str]) -> bool:
    """``path`` is one of ``roots`` or under one (URLs by bucket and key, facelabel.storage)."""
    if storage.is_url(path):
        return storage.inside(path, roots)
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def read_confined(
    path: str,
    roots: Sequence[str],
    *,
    max_bytes: int,
    data_roots: Sequence[Path | str] = (),
    outage_deadline: float = 0,
) -> bytes:
    """The bytes of ``path``, refused unless the file actually opened lies inside ``roots``
    (and inside ``data_roots``, the worker's own limit, when it has one).

    The check is made on the open descriptor (its path in /proc/self/fd), not on the name:
    a folder swapped for a symlink between a check and the open cannot lead outside. A URL is
    read from object storage (facelabel.storage), an unreachable store tried again for
    ``outage_deadline`` seconds.
    """
    if storage.is_url(path):
        return storage.read_object(
            path, roots, max_bytes=max_bytes, data_roots=data_roots, outage_deadline=outage_deadline
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except OSError as exc:
        raise ReadError(_os_reason(exc)) from None
    with os.fdopen(fd, "rb") as handle:
        real = _opened_path(fd, path)
        if not inside(real, roots):
            raise ReadError(f"refused: {path} resolves to {real}, outside the job's roots")
        if data_roots and not inside(real, [str(r) for r in data_roots]):
            raise ReadError(f"refused: {real} is outside this worker's FACELABEL_DATA_ROOTS")
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ReadError("not a file: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ReadError("not a regular file")
        if info.st_size > max_bytes:
            raise ReadError(f"file too large: {info.st_size} bytes (limit {max_bytes})")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise ReadError(_os_reason(exc)) from None
    if len(data) > max_bytes:  # grew after fstat
        raise ReadError(f"file too large: over {max_bytes} bytes (limit)")
    return data


def _opened_path(fd: int, name: str) -> str:
    """The real path of an open descriptor (Linux's /proc; elsewhere the resolved name)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(name)


def read_file(path: str, *, max_bytes: int, data_roots: Sequence[Path | str] = ()) -> bytes:
    """A file a user named (``predict``, a correction's photo): the same checks (a regular
    file, the size limit, FACELABEL_DATA_ROOTS when set) with its own folder as the root."""
    return read_confined(
        path, [os.path.dirname(os.path.realpath(path))], max_bytes=max_bytes, data_roots=data_roots
    )


def job_roots(paths: Sequence[str | Path], data_roots: Sequence[Path | str] = ()) -> list[str]:
    """The resolved roots a job over ``paths`` may read, checked against ``data_roots``."""
    roots = [resolved(p) for p in paths]
    allowed = [str(r) for r in data_roots]
    if allowed:
        outside = [r for r in roots if not inside(r, allowed)]
        if outside:
            raise ReadError(f"{outside[0]} is outside FACELABEL_DATA_ROOTS ({':'.join(allowed)})")
    return roots


def resolved(path: str | Path) -> str:
    """A local path made absolute with its links resolved; a URL in its normalised form."""
    return storage.normalised(path) if storage.is_url(path) else os.path.realpath(path)


def _os_reason(exc: OSError) -> str:
    reasons = {
        errno.ENOENT: NOT_FOUND,
        errno.EACCES: "permission denied",
        errno.EISDIR: "not a file: it is a directory",
        errno.ELOOP: "symlink loop",
    }
    return reasons.get(exc.errno, f"cannot read file: {exc.strerror or exc}")
