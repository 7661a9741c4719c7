"""A face row's columns, derived from ATTRIBUTES, and the one streaming writer of rows as CSV,
JSON or JSON lines that ``query`` (to stdout) and ``export`` (to a file) both use, so the same
rows come out as the same bytes."""

from __future__ import annotations

import csv
import datetime as dt
import json
from typing import IO, Any, Iterable, Sequence

from facelabel.artifact import ATTRIBUTES
from facelabel.clock import iso

BOX = ("box_x", "box_y", "box_w", "box_h")
PROBABILITIES = tuple(f"p_{a}" for a in ATTRIBUTES)
FACE_FIELDS = (*BOX, *ATTRIBUTES, *PROBABILITIES)  # what a result holds per face
QUERY_COLUMNS = ("path", "face", *FACE_FIELDS, "model_version")  # the contract (DESIGN.md)
EXPORT_COLUMNS = (
    *QUERY_COLUMNS,
    "job", "detector", "detection_confidence", "corrected", "image_width", "image_height",
)  # fmt: skip
TEXT_FORMATS = ("csv", "json", "jsonl")


def write_rows(out: IO[str], rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str) -> int:
    """Write ``rows`` (dicts holding ``columns``) to ``out`` as ``fmt``, one row at a time;
    returns the count. Datetimes become ISO 8601 UTC text."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for count, row in enumerate(rows, 1):
            writer.writerow([plain(row[c]) for c in columns])
    elif fmt == "jsonl":
        for count, row in enumerate(rows, 1):
            out.write(_json(row, columns) + "\n")
    elif fmt == "json":
        out.write("[")
        for count, row in enumerate(rows, 1):
            out.write(("\n " if count == 1 else ",\n ") + _json(row, columns))
        out.write("\n]\n" if count else "]\n")
    else:
        raise ValueError(f"not a text format: {fmt!r}")
    return count


def _json(row: dict[str, Any], columns: Sequence[str]) -> str:
    return json.dumps({c: plain(row[c]) for c in columns}, ensure_ascii=False)


def plain(value: Any) -> Any:
    """Datetimes as ISO 8601 UTC text; everything else as it is."""
    return iso(value) if isinstance(value, dt.datetime) else value
