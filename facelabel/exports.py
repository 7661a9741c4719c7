"""Results in the formats other tools read, written as rows stream in (flat memory however
many faces): Parquet (typed columns, for DuckDB and pandas), CSV and JSON lines (``query``'s
writer), COCO (images, one annotation per face with its box and the attributes) and XMP
sidecars (facelabel.xmp)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from facelabel.artifact import ATTRIBUTES
from facelabel.destination import open_file
from facelabel.rows import BOX, EXPORT_COLUMNS, PROBABILITIES, write_rows
from facelabel.xmp import write_mirrored

FORMATS = ("parquet", "csv", "jsonl", "coco", "xmp")
BATCH = 10_000  # Parquet rows per row group


def write(rows: Iterable[dict[str, Any]], fmt: str, out: Path) -> int:
    """Write ``rows`` (dicts with EXPORT_COLUMNS) to ``out`` as ``fmt`` (for ``xmp``, into a
    folder that mirrors the photos' tree); returns the faces written. ``out``'s folder must
    exist (facelabel.destination checks it); a write that fails is an OutputError."""
    if fmt == "xmp":
        return write_mirrored(iter(rows), out)
    if fmt in ("csv", "jsonl"):
        with open_file(out, "w") as handle:
            return write_rows(handle, rows, EXPORT_COLUMNS, fmt)
    writers = {"parquet": _parquet, "coco": _coco}
    return writers[fmt](iter(rows), out)


def _parquet(rows: Iterator[dict], out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("path", pa.string()),
            ("face", pa.int32()),
            *((b, pa.int32()) for b in BOX),
            *((a, pa.bool_()) for a in ATTRIBUTES),
            *((p, pa.float32()) for p in PROBABILITIES),
            ("model_version", pa.string()),
            ("job", pa.int64()),
            ("detector", pa.string()),
            ("detection_confidence", pa.float32()),
            ("corrected", pa.list_(pa.string())),
            ("image_width", pa.int32()),
            ("image_height", pa.int32()),
        ]
    )
    count = 0
    with open_file(out, "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
        while batch := [_typed(row) for _, row in zip(range(BATCH), rows)]:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            count += len(batch)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _typed(row: dict) -> dict:
    typed = {c: row[c] for c in EXPORT_COLUMNS}
    typed.update({a: bool(row[a]) for a in ATTRIBUTES})
    typed["corrected"] = [a for a in row["corrected"].split(",") if a]
    return typed


def _coco(rows: Iterator[dict], out: Path) -> int:
    """COCO detection layout. Rows come ordered by path, so an image's id is known when its
    first face arrives; images go to a scratch file meanwhile and follow the annotations."""
    last_path, image_id, count = None, 0, 0
    with open_file(out, "w") as handle, tempfile.TemporaryFile("w+", encoding="utf-8") as images:
        handle.write('{"info": {"description": "facelabel faces"}, ')
        handle.write('"categories": [{"id": 1, "name": "face", "supercategory": "person"}], ')
        handle.write('"annotations": [')
        for count, row in enumerate(rows, 1):
            if row["path"] != last_path:
                last_path, image_id = row["path"], image_id + 1
                image = {"id": image_id, "file_name": last_path}
                image.update(width=row["image_width"], height=row["image_height"])
                images.write(("" if image_id == 1 else ", ") + json.dumps(image, ensure_ascii=False))
            annotation = {
                "id": count,
                "image_id": image_id,
                "category_id": 1,
                "bbox": [row[b] for b in BOX],
                "area": row["box_w"] * row["box_h"],
                "iscrowd": 0,
                "attributes": {
                    "face": row["face"],
                    **{a: int(row[a]) for a in ATTRIBUTES},
                    **{p: row[p] for p in PROBABILITIES},
                    "model_version": row["model_version"],
                },
            }
            handle.write(("" if count == 1 else ", ") + json.dumps(annotation, ensure_ascii=False))
        handle.write('], "images": [')
        images.seek(0)
        shutil.copyfileobj(images, handle)
        handle.write("]}\n")
    return count
