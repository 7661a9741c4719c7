"""Exports other tools read: Parquet with typed columns, CSV and JSON lines with the query
columns and more, COCO with one annotation per face; filters as in ``query``."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from facelabel.cli import main
from facelabel.exports import COLUMNS
from tests import images

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Five aligned images labelled, one face corrected."""
    root = tmp_path_factory.mktemp("export")
    url = f"sqlite:///{root / 'facelabel.db'}"
    paths = images.folder_of_images(root / "photos", 5)
    runner = CliRunner()
    assert runner.invoke(main, ["--db", url, "label", str(root / "photos"), "--aligned"]).exit_code == 0
    assert runner.invoke(main, ["--db", url, "correct", str(paths[0]), "--set", "hat=1"]).exit_code == 0
    return url, root, paths


def export(url, *args):
    result = CliRunner().invoke(main, ["--db", url, "export", *args])
    assert result.exit_code == 0, result.output
    return result


def test_parquet_has_typed_columns_and_every_face(labelled, tmp_path):
    url, _, paths = labelled
    out = tmp_path / "faces.parquet"
    assert "5 faces written" in export(url, "--format", "parquet", "--job", "1", "--out", str(out)).stderr
    table = pq.read_table(out)
    assert table.num_rows == 5 and tuple(table.column_names) == COLUMNS
    assert table.schema.field("hat").type == pa.bool_() and table.schema.field("p_hat").type == pa.float32()
    assert table.schema.field("corrected").type == pa.list_(pa.string())
    rows = {row["path"]: row for row in table.to_pylist()}
    assert rows[str(paths[0])]["hat"] is True and rows[str(paths[0])]["corrected"] == ["hat"]
    assert {row["job"] for row in rows.values()} == {1}
    assert {row["detector"] for row in rows.values()} == {"none"}  # --aligned: no detector
    for row in rows.values():  # aligned: the face is the whole image
        assert (row["box_w"], row["box_h"]) == (row["image_width"], row["image_height"])


def test_csv_and_jsonl_carry_the_same_rows(labelled, tmp_path):
    url, _, _ = labelled
    export(url, "--format", "csv", "--out", str(tmp_path / "f.csv"))
    export(url, "--format", "jsonl", "--out", str(tmp_path / "f.jsonl"))
    with open(tmp_path / "f.csv", newline="") as handle:
        table = list(csv.reader(handle))
    lines = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert tuple(table[0]) == COLUMNS and len(table) == 6 and len(lines) == 5
    assert [row[0] for row in table[1:]] == [line["path"] for line in lines]


def test_coco_has_one_image_and_one_annotation_per_face(labelled, tmp_path):
    url, _, _ = labelled
    out = tmp_path / "coco.json"
    export(url, "--format", "coco", "--has", "hat", "--out", str(out))
    coco = json.loads(out.read_text())
    assert coco["categories"] == [{"id": 1, "name": "face", "supercategory": "person"}]
    ids = {image["id"] for image in coco["images"]}
    assert len(ids) == len(coco["images"]) == len(coco["annotations"]) >= 1
    sizes = {image["id"]: [0, 0, image["width"], image["height"]] for image in coco["images"]}
    for annotation in coco["annotations"]:
        assert annotation["category_id"] == 1 and annotation["attributes"]["hat"] == 1
        assert annotation["bbox"] == sizes[annotation["image_id"]]


def test_an_export_of_nothing_is_a_valid_empty_file(labelled, tmp_path):
    url, _, _ = labelled
    out = tmp_path / "none.parquet"
    export(url, "--format", "parquet", "--path", "/nowhere/*", "--out", str(out))
    assert pq.read_table(out).num_rows == 0


EXIV2 = shutil.which("exiv2")


@pytest.mark.skipif(EXIV2 is None, reason="no exiv2 here (.ci/run installs Debian's)")
def test_xmp_sidecars_read_back_by_exiv2_give_the_faces_regions(tmp_path):
    photos = tmp_path / "photos" / "trip"
    shutil.copytree(EXAMPLES, photos, ignore=shutil.ignore_patterns("*.md"))
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    url = f"sqlite:///{tmp_path / 'facelabel.db'}"
    assert CliRunner().invoke(main, ["--db", url, "label", str(photos)]).exit_code == 0
    export(url, "--format", "jsonl", "--out", str(tmp_path / "f.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert "faces written" in export(url, "--format", "xmp", "--out", str(tmp_path / "xmp")).stderr

    for path in {r["path"] for r in rows}:
        sidecar = tmp_path / "xmp" / (path.lstrip("/") + ".xmp")
        read = subprocess.run([EXIV2, "-PXkv", str(sidecar)], capture_output=True, text=True, check=True)
        values = {k: v.strip() for k, _, v in (line.partition(" ") for line in read.stdout.splitlines())}
        faces = sorted((r for r in rows if r["path"] == path), key=lambda r: r["face"])
        prefix = "Xmp.mwg-rs.Regions/mwg-rs:RegionList"
        for number, face in enumerate(faces, 1):
            area = f"{prefix}[{number}]/mwg-rs:Area/stArea:"
            x, y, w, h = (float(values[area + k]) for k in "xywh")
            width, height = face["image_width"], face["image_height"]
            assert x == pytest.approx((face["box_x"] + face["box_w"] / 2) / width, abs=1e-5)
            assert y == pytest.approx((face["box_y"] + face["box_h"] / 2) / height, abs=1e-5)
            assert (w, h) == (
                pytest.approx(face["box_w"] / width, abs=1e-5),
                pytest.approx(face["box_h"] / height, abs=1e-5),
            )
            assert values[f"{prefix}[{number}]/mwg-rs:Type"].strip() == "Face"
        assert f"{prefix}[{len(faces) + 1}]/mwg-rs:Type" not in values
        keywords = values.get("Xmp.lr.hierarchicalSubject", "")
        for attribute in ("eyeglasses", "beard", "mustache", "hat"):
            assert (f"facelabel|{attribute}" in keywords) == any(f[attribute] for f in faces)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before  # photos untouched


def test_xmp_needs_a_folder(labelled, tmp_path):
    url, _, _ = labelled
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(
        main, ["--db", url, "export", "--format", "xmp", "--out", str(tmp_path / "file")]
    )
    assert result.exit_code == 2 and "folder" in result.output
