"""Time, always in UTC: one ``utcnow()`` for every timestamp, one text form for output."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC to the second, e.g. ``2026-11-29T17:51:36Z`` (naive values are UTC:
    SQLite returns what was stored, without the zone)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"
