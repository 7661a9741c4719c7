"""One way out for rows: ``--format table|csv|json|jsonl``, streamed."""

from __future__ import annotations

import contextlib
import itertools
import sys
from typing import Any, Iterable, Sequence

import click

from facelabel.rows import TEXT_FORMATS, plain, write_rows

FORMATS = ("table", *TEXT_FORMATS)


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
    with _writing_stdout():
        if fmt == "table":
            return _emit_table(sys.stdout, rows, columns)
        return write_rows(sys.stdout, rows, columns, fmt)


@contextlib.contextmanager
def _writing_stdout():
    """A stdout that cannot be written (a full disk) is a one-line error; a reader that stops
    (``| head``) is not: Click ends quietly on a broken pipe."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise click.ClickException(f"cannot write the output ({exc.strerror})") from None


def _emit_table(out, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> int:
    """Aligned columns; widths come from the first 1,000 rows so output still streams."""
    rows = iter(rows)
    head = list(itertools.islice(rows, 1000))
    widths = [max([len(c)] + [len(shown(r[c])) for r in head]) for c in columns]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    count = 0
    for count, row in enumerate(itertools.chain(head, rows), 1):
        out.write("  ".join(shown(row[c]).ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    return count


def shown(value: Any) -> str:
    """Text for a terminal: control characters (an escape sequence in a file name) shown
    escaped, never sent to the terminal."""
    text = "" if value is None else str(plain(value))
    return text if text.isprintable() else "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(character: str) -> str:
    return repr(character)[1:-1] if ord(character) < 0x10000 else character


def emit_mapping(mapping: dict[str, Any], fmt: str) -> None:
    """A single record: ``key  value`` lines for tables, one object/row otherwise."""
    if fmt == "table":
        width = max(len(k) for k in mapping)
        with _writing_stdout():
            for key, value in mapping.items():
                click.echo(f"{key.ljust(width)}  {shown(value)}")
    else:
        emit_rows([mapping], list(mapping), fmt)
