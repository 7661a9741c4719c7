"""One way out for rows: ``--format table|csv|json|jsonl``, streamed."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import sys
from typing import Any, Iterable, Sequence

import click

from facelabel.clock import iso

FORMATS = ("table", "csv", "json", "jsonl")


def format_option(default: str = "table"):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="Output format.",
    )


def emit_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str) -> int:
    """Write ``rows`` (dicts keyed by ``columns``) to stdout as ``fmt``; returns the count."""
    out = sys.stdout
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for count, row in enumerate(rows, 1):
            writer.writerow([_plain(row[c]) for c in columns])
    elif fmt == "jsonl":
        for count, row in enumerate(rows, 1):
            out.write(json.dumps({c: _plain(row[c]) for c in columns}, ensure_ascii=False) + "\n")
    elif fmt == "json":
        out.write("[")
        for count, row in enumerate(rows, 1):
            out.write(
                ("\n " if count == 1 else ",\n ")
                + json.dumps({c: _plain(row[c]) for c in columns}, ensure_ascii=False)
            )
        out.write("\n]\n" if count else "]\n")
    else:
        count = _emit_table(out, rows, columns)
    return count


def _emit_table(out, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> int:
    """Aligned columns; widths come from the first 1,000 rows so output still streams."""
    rows = iter(rows)
    head = list(itertools.islice(rows, 1000))
    widths = [max([len(c)] + [len(_cell(r[c])) for r in head]) for c in columns]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    count = 0
    for count, row in enumerate(itertools.chain(head, rows), 1):
        out.write("  ".join(_cell(row[c]).ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    return count


def _cell(value: Any) -> str:
    """Text for a terminal: control characters (an escape sequence in a file name) shown
    escaped, never sent to the terminal."""
    text = "" if value is None else str(_plain(value))
    return text if text.isprintable() else "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(character: str) -> str:
    return repr(character)[1:-1] if ord(character) < 0x10000 else character


def _plain(value: Any) -> Any:
    """Datetimes as ISO 8601 UTC text; everything else as it is."""
    return iso(value) if isinstance(value, dt.datetime) else value


def emit_mapping(mapping: dict[str, Any], fmt: str) -> None:
    """A single record: ``key  value`` lines for tables, one object/row otherwise."""
    if fmt == "table":
        width = max(len(k) for k in mapping)
        for key, value in mapping.items():
            click.echo(f"{key.ljust(width)}  {_cell(value)}")
    else:
        emit_rows([mapping], list(mapping), fmt)
