"""Results in the formats other tools read, written as rows stream in (flat memory however
many faces): Parquet (typed columns, for DuckDB and pandas), CSV, JSON lines, and COCO
(images, one annotation per face with its box and the four attributes)."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from facelabel.artifact import ATTRIBUTES

# the query contract's columns, then what an export adds
COLUMNS = (
    "path", "face", "box_x", "box_y", "box_w", "box_h",
    *ATTRIBUTES,
    *(f"p_{a}" for a in ATTRIBUTES),
    "model_version",
    "job", "detector", "detection_confidence", "corrected", "image_width", "image_height",
)  # fmt: skip
FORMATS = ("parquet", "csv", "jsonl", "coco")
BATCH = 10_000  # Parquet rows per row group


def write(rows: Iterable[dict[str, Any]], fmt: str, out: Path) -> int:
    """Write ``rows`` (dicts with COLUMNS) to ``out`` as ``fmt``; returns the faces written."""
    return {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl, "coco": _coco}[fmt](iter(rows), out)


def _parquet(rows: Iterator[dict], out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("path", pa.string()),
            ("face", pa.int32()),
            *((f"box_{k}", pa.int32()) for k in "xywh"),
            *((a, pa.bool_()) for a in ATTRIBUTES),
            *((f"p_{a}", pa.float32()) for a in ATTRIBUTES),
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
    with pq.ParquetWriter(out, schema) as writer:
        while batch := [_typed(row) for _, row in zip(range(BATCH), rows)]:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            count += len(batch)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _typed(row: dict) -> dict:
    typed = {c: row[c] for c in COLUMNS}
    typed.update({a: bool(row[a]) for a in ATTRIBUTES})
    typed["corrected"] = [a for a in row["corrected"].split(",") if a]
    return typed


def _csv(rows: Iterator[dict], out: Path) -> int:
    count = 0
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for count, row in enumerate(rows, 1):
            writer.writerow([row[c] for c in COLUMNS])
    return count


def _jsonl(rows: Iterator[dict], out: Path) -> int:
    count = 0
    with open(out, "w", encoding="utf-8") as handle:
        for count, row in enumerate(rows, 1):
            handle.write(json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False) + "\n")
    return count


def _coco(rows: Iterator[dict], out: Path) -> int:
    """COCO detection layout. Rows come ordered by path, so an image's id is known when its
    first face arrives; images go to a scratch file meanwhile and follow the annotations."""
    last_path, image_id, count = None, 0, 0
    with open(out, "w", encoding="utf-8") as handle, tempfile.TemporaryFile("w+", encoding="utf-8") as images:
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
                "bbox": [row["box_x"], row["box_y"], row["box_w"], row["box_h"]],
                "area": row["box_w"] * row["box_h"],
                "iscrowd": 0,
                "attributes": {
                    "face": row["face"],
                    **{a: int(row[a]) for a in ATTRIBUTES},
                    **{f"p_{a}": row[f"p_{a}"] for a in ATTRIBUTES},
                    "model_version": row["model_version"],
                },
            }
            handle.write(("" if count == 1 else ", ") + json.dumps(annotation, ensure_ascii=False))
        handle.write('], "images": [')
        images.seek(0)
        shutil.copyfileobj(images, handle)
        handle.write("]}\n")
    return count
