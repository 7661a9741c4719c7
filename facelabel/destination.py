"""Where a command writes its output, checked before any work: a missing folder, a file where
a folder should be, or a folder that cannot be written is one line naming that folder."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO

from facelabel.errors import FacelabelError


class OutputError(FacelabelError):
    """An output path that cannot be written; ``str()`` names the folder and why."""


def check_file(path: str | Path) -> Path:
    """``path`` as an absolute file path whose folder exists and can be written."""
    path = Path(os.path.abspath(path))
    if path.is_dir():
        raise OutputError(f"{path} is a folder, not a file")
    _check_folder(path.parent)
    return path


def check_folder(path: str | Path) -> Path:
    """``path`` as an absolute, writable folder, created if missing (its parent must exist)."""
    path = Path(os.path.abspath(path))
    if path.is_dir():
        _check_folder(path)
        return path
    if path.exists():
        raise OutputError(f"{path} is a file, not a folder")
    _check_folder(path.parent)
    try:
        path.mkdir()
    except OSError as exc:
        raise unwritable(path.parent, exc) from None
    return path


def open_file(path: Path, mode: str) -> IO:
    """``open(path, mode)`` (text as UTF-8) with a failure as an OutputError naming the folder."""
    try:
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding="utf-8", newline="")
    except OSError as exc:
        raise unwritable(path.parent, exc) from None


def unwritable(folder: Path, exc: OSError) -> OutputError:
    """The error for a write into ``folder`` that failed with ``exc``."""
    gone = exc.errno == errno.ENOENT and not folder.is_dir()
    reason = "it is gone" if gone else "not writable" if exc.errno == errno.ENOENT else exc.strerror
    return OutputError(f"cannot write in {folder} ({reason})")


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise OutputError(f"no folder {folder}")
    if not folder.is_dir():
        raise OutputError(f"{folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {folder} (not writable)")
