"""Exports other tools read: Parquet with typed columns, CSV and JSON lines with the query
columns and more (written as ``query`` writes them), COCO with one annotation per face, XMP
sidecars photo managers read (under --out or beside the photos); filters as in ``query``; an
--out that cannot be written is a one-line error naming its folder."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from facelabel.artifact import ATTRIBUTES
from facelabel.cli import main
from facelabel.exports import FORMATS
from facelabel.rows import EXPORT_COLUMNS
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
    assert table.num_rows == 5 and tuple(table.column_names) == EXPORT_COLUMNS
    assert table.schema.field("hat").type == pa.bool_() and table.schema.field("p_hat").type == pa.float32()
    assert table.schema.field("corrected").type == pa.list_(pa.string())
    rows = {row["path"]: row for row in table.to_pylist()}
    assert rows[str(paths[0])]["hat"] is True and rows[str(paths[0])]["corrected"] == ["hat"]
    assert {row["job"] for row in rows.values()} == {1}
    assert {row["detector"] for row in rows.values()} == {"none"}  # --aligned: no detector
    for row in rows.values():  # aligned: the face is the whole image
        assert (row["box_w"], row["box_h"]) == (row["image_width"], row["image_height"])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_the_query_rows_as_query_does_then_its_own_columns(labelled, tmp_path, fmt):
    url, _, _ = labelled
    export(url, "--format", fmt, "--out", str(tmp_path / "faces"))
    exported = (tmp_path / "faces").read_text(encoding="utf-8").splitlines()
    queried = CliRunner().invoke(main, ["--db", url, "query", "--format", fmt]).stdout.splitlines()
    assert len(exported) == len(queried) == 5 + (fmt == "csv")
    for mine, theirs in zip(exported, queried):  # the same bytes, the extra columns after
        assert mine.startswith(theirs + "," if fmt == "csv" else theirs[:-1] + ", ")
    if fmt == "csv":
        assert tuple(next(csv.reader([exported[0]]))) == EXPORT_COLUMNS
    else:
        assert [tuple(json.loads(line)) for line in exported] == [EXPORT_COLUMNS] * 5


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
NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
}


def description(face: dict) -> str:
    """What a face's region says: the attributes it shows (after corrections)."""
    return "facelabel: " + (", ".join(a for a in ATTRIBUTES if face[a]) or "none")


def parsed_sidecar(path: Path) -> tuple[list[dict], list[str], list[str]]:
    """A sidecar read as XML: its regions' attributes (prefixed names), its dc:subject and its
    lr:hierarchicalSubject keywords."""
    root = ET.parse(path).getroot()
    regions = [
        {
            name.replace("{" + NS["mwg-rs"] + "}", "mwg-rs:"): value
            for name, value in li.find("rdf:Description", NS).attrib.items()
        }
        for li in root.iterfind(".//mwg-rs:RegionList/rdf:Bag/rdf:li", NS)
    ]
    subjects = [li.text for li in root.iterfind(".//dc:subject/rdf:Bag/rdf:li", NS)]
    hierarchical = [li.text for li in root.iterfind(".//lr:hierarchicalSubject/rdf:Bag/rdf:li", NS)]
    return regions, subjects, hierarchical


def check_sidecar(sidecar: Path, faces: list[dict]) -> None:
    """One Face region per face, in face order, described and unnamed; keywords for what any
    face shows."""
    regions, subjects, hierarchical = parsed_sidecar(sidecar)
    assert regions == [{"mwg-rs:Type": "Face", "mwg-rs:Description": description(f)} for f in faces]
    shown = [a for a in ATTRIBUTES if any(f[a] for f in faces)]
    assert subjects == shown and hierarchical == [f"facelabel|{a}" for a in shown]


def rows_of(url, tmp_path) -> list[dict]:
    export(url, "--format", "jsonl", "--out", str(tmp_path / "rows.jsonl"))
    return [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]


def faces_by_photo(rows: list[dict]) -> dict[str, list[dict]]:
    photos: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["path"], r["face"])):
        photos.setdefault(row["path"], []).append(row)
    return photos


@pytest.mark.skipif(EXIV2 is None, reason="no exiv2 here (.ci/run installs Debian's)")
def test_xmp_sidecars_read_back_by_exiv2_give_the_faces_regions(tmp_path):
    photos = tmp_path / "photos" / "trip"
    shutil.copytree(EXAMPLES, photos, ignore=shutil.ignore_patterns("*.md"))
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    url = f"sqlite:///{tmp_path / 'facelabel.db'}"
    assert CliRunner().invoke(main, ["--db", url, "label", str(photos)]).exit_code == 0
    rows = rows_of(url, tmp_path)
    assert "faces written" in export(url, "--format", "xmp", "--out", str(tmp_path / "xmp")).stderr

    for path, faces in faces_by_photo(rows).items():
        sidecar = tmp_path / "xmp" / (path.lstrip("/") + ".xmp")
        check_sidecar(sidecar, faces)
        read = subprocess.run([EXIV2, "-PXkv", str(sidecar)], capture_output=True, text=True, check=True)
        values = {k: v.strip() for k, _, v in (line.partition(" ") for line in read.stdout.splitlines())}
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
            assert values[f"{prefix}[{number}]/mwg-rs:Type"] == "Face"
            assert values[f"{prefix}[{number}]/mwg-rs:Description"] == description(face)
        assert f"{prefix}[{len(faces) + 1}]/mwg-rs:Type" not in values
        assert not [k for k in values if k.endswith("mwg-rs:Name")]  # no bogus person
        keywords = values.get("Xmp.lr.hierarchicalSubject", "")
        for attribute in ATTRIBUTES:
            assert (f"facelabel|{attribute}" in keywords) == any(f[attribute] for f in faces)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before  # photos untouched


def label_folders(tmp_path, *folders: tuple[str, int]) -> tuple[str, list[Path]]:
    """Aligned images in each (folder, count), labelled as one job; the photos' paths."""
    url = f"sqlite:///{tmp_path / 'facelabel.db'}"
    paths: list[Path] = []
    for index, (folder, count) in enumerate(folders):
        paths += images.folder_of_images(tmp_path / folder, count, start_seed=index)
    roots = [str(tmp_path / folder) for folder, _ in folders]
    assert CliRunner().invoke(main, ["--db", url, "label", *roots, "--aligned"]).exit_code == 0
    return url, paths


def summary(written: int, skipped: int, failed: int) -> str:
    faces = written + skipped + failed  # one face per aligned image
    return (
        f"{faces} faces; sidecars: {written} written beside their photos, {skipped} skipped "
        f"(one was there), {failed} failed"
    )


def test_beside_writes_next_to_each_photo_and_never_replaces_a_sidecar(tmp_path):
    url, paths = label_folders(tmp_path, ("photos", 4))
    digikam, lightroom = Path(f"{paths[0]}.xmp"), paths[1].with_suffix(".xmp")
    digikam.write_text("a person's tags")
    lightroom.write_text("develop settings")
    assert export(url, "--format", "xmp", "--beside").stderr == summary(2, 2, 0) + "\n"
    assert digikam.read_text() == "a person's tags" and lightroom.read_text() == "develop settings"
    assert not Path(f"{paths[1]}.xmp").exists()  # IMG.xmp counts as that photo's sidecar
    photos = faces_by_photo(rows_of(url, tmp_path))
    for path in paths[2:]:
        check_sidecar(Path(f"{path}.xmp"), photos[str(path)])
    written = {p: Path(f"{p}.xmp").read_bytes() for p in paths[2:]}
    assert export(url, "--format", "xmp", "--beside").stderr == summary(0, 4, 0) + "\n"
    assert {p: Path(f"{p}.xmp").read_bytes() for p in paths[2:]} == written


@contextlib.contextmanager
def unwritable(folder: Path):
    """``folder`` made read-only: a read-only bind mount for root (whom permissions do not
    stop), mode 0555 for anyone else."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", folder, folder], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount read-only here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", folder], check=True)


def test_a_photo_in_a_folder_that_cannot_be_written_is_a_counted_failure(tmp_path):
    url, paths = label_folders(tmp_path, ("locked", 2), ("open", 1))
    with unwritable(tmp_path / "locked"):
        result = export(url, "--format", "xmp", "--beside")
    lines = result.stderr.splitlines()
    assert lines[-1] == summary(1, 0, 2)
    failures = sorted(line.partition(": ") for line in lines[:-1])
    assert [path for path, _, _ in failures] == [str(p) for p in paths[:2]]
    assert all(reason.startswith("cannot write in its folder (") for _, _, reason in failures)
    assert "Traceback" not in result.output
    assert Path(f"{paths[2]}.xmp").is_file() and not Path(f"{paths[0]}.xmp").exists()


def test_a_folder_swapped_for_a_link_gets_no_sidecar_through_it(tmp_path):
    url, paths = label_folders(tmp_path, ("trip", 1))
    (tmp_path / "trip").rename(tmp_path / "trip-moved")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "trip").symlink_to(tmp_path / "elsewhere")
    result = export(url, "--format", "xmp", "--beside")
    assert result.stderr.splitlines() == [
        f"{paths[0]}: the photo is no longer in its folder",
        summary(0, 0, 1),
    ]
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_beside_is_for_xmp_and_excludes_out(labelled, tmp_path):
    url, _, _ = labelled
    runner = CliRunner()
    csv_beside = runner.invoke(main, ["--db", url, "export", "--format", "csv", "--beside"])
    assert csv_beside.exit_code == 2 and csv_beside.output == (
        "Error: --beside writes XMP sidecars: use it with --format xmp\n"
    )
    both = runner.invoke(main, ["--db", url, "export", "--format", "xmp", "--beside", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "without --out" in both.output
    neither = runner.invoke(main, ["--db", url, "export", "--format", "parquet"])
    assert neither.exit_code == 2 and "Missing option '--out'" in neither.output


OUTPUTS = [["export", "--format", fmt] for fmt in FORMATS] + [["report", "--job", "1"]]


@pytest.mark.parametrize("command", OUTPUTS, ids=lambda c: c[-1])
def test_an_out_that_cannot_be_written_is_one_line_naming_its_folder(labelled, tmp_path, command):
    url, _, _ = labelled
    (tmp_path / "file").write_text("")
    (tmp_path / "locked").mkdir()
    cases = {
        tmp_path / "no" / "such" / "x": f"no folder {tmp_path / 'no' / 'such'}",
        tmp_path / "file" / "x": f"{tmp_path / 'file'} is not a folder",
        tmp_path / "locked" / "x": f"cannot write in {tmp_path / 'locked'} (not writable)",
    }
    with unwritable(tmp_path / "locked"):
        for out, message in cases.items():
            result = CliRunner().invoke(main, ["--db", url, *command, "--out", str(out)])
            assert (result.exit_code, result.output) == (2, f"Error: Invalid value for --out: {message}\n")
    assert not (tmp_path / "locked" / "x").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_out_in_proc_is_one_line_naming_it(labelled, fmt):
    url, _, _ = labelled
    result = CliRunner().invoke(main, ["--db", url, "export", "--format", fmt, "--out", "/proc/x"])
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.startswith("Error: ")
    assert result.output.endswith(": cannot write in /proc (not writable)\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("command", [["query", "--format", "csv"], ["query"], ["stats"]], ids=" ".join)
def test_a_stdout_that_cannot_be_written_is_one_line(labelled, command):
    url, _, _ = labelled
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "facelabel", "--db", url, *command],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert (result.returncode, result.stderr) == (
        1,
        "Error: cannot write the output (No space left on device)\n",
    )


def test_xmp_needs_a_folder_and_the_others_a_file(labelled, tmp_path):
    url, _, _ = labelled
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(
        main, ["--db", url, "export", "--format", "xmp", "--out", str(tmp_path / "file")]
    )
    assert result.exit_code == 2 and f"{tmp_path / 'file'} is a file, not a folder" in result.output
    result = CliRunner().invoke(main, ["--db", url, "export", "--format", "csv", "--out", str(tmp_path)])
    assert result.exit_code == 2 and f"{tmp_path} is a folder, not a file" in result.output
