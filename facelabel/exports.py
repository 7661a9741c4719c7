"""Results in the formats other tools read, written as rows stream in (flat memory however
many faces): Parquet (typed columns, for DuckDB and pandas), CSV, JSON lines, COCO (images,
one annotation per face with its box and the four attributes) and XMP sidecars (face regions
and keywords, as digiKam, darktable and Lightroom read them)."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from facelabel.artifact import ATTRIBUTES
from facelabel.errors import FacelabelError

# the query contract's columns, then what an export adds
COLUMNS = (
    "path", "face", "box_x", "box_y", "box_w", "box_h",
    *ATTRIBUTES,
    *(f"p_{a}" for a in ATTRIBUTES),
    "model_version",
    "job", "detector", "detection_confidence", "corrected", "image_width", "image_height",
)  # fmt: skip
FORMATS = ("parquet", "csv", "jsonl", "coco", "xmp")
BATCH = 10_000  # Parquet rows per row group


def write(rows: Iterable[dict[str, Any]], fmt: str, out: Path) -> int:
    """Write ``rows`` (dicts with COLUMNS) to ``out`` as ``fmt`` (for ``xmp``, a folder that
    mirrors the photos' tree); returns the faces written."""
    writers = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl, "coco": _coco, "xmp": xmp_sidecars}
    return writers[fmt](iter(rows), out)


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


XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="facelabel">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/">
   <mwg-rs:Regions rdf:parseType="Resource">
    <mwg-rs:AppliedToDimensions stDim:w="{width}" stDim:h="{height}" stDim:unit="pixel"/>
    <mwg-rs:RegionList>
     <rdf:Bag>
{regions}
     </rdf:Bag>
    </mwg-rs:RegionList>
   </mwg-rs:Regions>
{keywords}  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""
KEYWORDS = """   <dc:subject>
    <rdf:Bag>
{subjects}
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
{hierarchical}
    </rdf:Bag>
   </lr:hierarchicalSubject>
"""
REGION = """      <rdf:li>
       <rdf:Description mwg-rs:Type="Face" mwg-rs:Name={name}>
        <mwg-rs:Area stArea:x="{x:.6f}" stArea:y="{y:.6f}" stArea:w="{w:.6f}" stArea:h="{h:.6f}"
         stArea:unit="normalized"/>
       </rdf:Description>
      </rdf:li>"""


def xmp_sidecars(rows: Iterator[dict], out: Path) -> int:
    """``out/<the photo's absolute path>.xmp`` per photo: an MWG face region per face (box
    centre and size as fractions of the upright image) and the keywords ``facelabel|<attribute>``
    of the attributes any face shows. The photos themselves are never opened for writing."""
    out = Path(out).resolve()
    count, faces = 0, []
    for row in rows:
        if faces and row["path"] != faces[0]["path"]:
            _write_sidecar(faces, out)
            faces = []
        faces.append(row)
        count += 1
    if faces:
        _write_sidecar(faces, out)
    return count


def _write_sidecar(faces: list[dict], out: Path) -> None:
    from xml.sax.saxutils import escape, quoteattr

    first = faces[0]
    target = (out / (first["path"].lstrip("/") + ".xmp")).resolve()
    if not target.is_relative_to(out):
        raise FacelabelError(f"refused to write a sidecar outside {out}: {first['path']}")
    width, height = first["image_width"], first["image_height"]
    regions, shown = [], []
    for face in faces:
        on = [a for a in ATTRIBUTES if face[a]]
        shown += [a for a in on if a not in shown]
        name = f"face {face['face']}: {', '.join(on) or 'none'}"
        x, y, w, h = face["box_x"], face["box_y"], face["box_w"], face["box_h"]
        regions.append(
            REGION.format(
                name=quoteattr(name),
                x=(x + w / 2) / width,
                y=(y + h / 2) / height,
                w=w / width,
                h=h / height,
            )
        )
    keywords = KEYWORDS.format(
        subjects="\n".join(f"     <rdf:li>{escape(a)}</rdf:li>" for a in shown),
        hierarchical="\n".join(f"     <rdf:li>facelabel|{escape(a)}</rdf:li>" for a in shown),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        XMP.format(
            width=width, height=height, regions="\n".join(regions), keywords=keywords if shown else ""
        ),
        encoding="utf-8",
    )
