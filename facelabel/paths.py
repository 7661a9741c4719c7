"""File names that are not valid UTF-8 (common in old archives): stored and shown escaped,
their bytes kept so the file can be opened again."""

from __future__ import annotations

import os


def stored_path(path: str) -> str:
    """The text a path is stored and shown as: itself, or with each byte that is not UTF-8
    written ``\\xNN`` (Python reads such names with surrogates, which no database stores)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def path_bytes(path: str) -> bytes | None:
    """The path's bytes when its stored text is not the path itself, else None."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def opened_path(stored: str, raw: bytes | None) -> str:
    """The path to open for a stored file row."""
    return os.fsdecode(raw) if raw is not None else stored
