"""`facelabel label` on a folder of awkward files: every valid image is labelled as its plain
RGB twin would be, every bad file gets a failure row with a plain reason, and the job
completes with exit 0."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from facelabel.cli import main
from tests import images


def run(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture
def awkward_folder(tmp_path):
    root = tmp_path / "photos"
    ref = images.reference()
    gray = ref.convert("L")
    good = {
        "reference.png": images.save(ref, root / "reference.png"),
        "reference.jpg": images.save(ref, root / "reference.jpg", quality=95),
        "gray.png": images.save(gray, root / "gray.png"),
        "sixteen bit.png": images.sixteen_bit_png(gray, root / "sixteen bit.png"),
        "cmyk.jpg": images.save(ref.convert("CMYK"), root / "cmyk.jpg", quality=95),
        "opaque rgba.png": images.save(ref.convert("RGBA"), root / "opaque rgba.png"),
        "palette.png": images.save(ref.convert("P"), root / "palette.png"),
        "palette.gif": images.save(ref.convert("P"), root / "palette.gif"),
        "animated.gif": images.animated_gif(ref.convert("P"), root / "animated.gif"),
        "rotated.jpg": images.exif_rotated_jpeg(ref, root / "rotated.jpg"),
        "progressive.jpg": images.save(ref, root / "progressive.jpg", quality=95, progressive=True),
        "lossless.webp": images.save(ref, root / "lossless.webp", lossless=True),
        "image.tiff": images.save(ref, root / "image.tiff"),
        "image.bmp": images.save(ref, root / "image.bmp"),
        "UPPER.JPG": images.save(ref, root / "UPPER.JPG", quality=95),
        "ñandú café.png": images.save(ref, root / "sub" / "ñandú café.png"),
        "tiny.png": images.save(images.reference(width=8, height=8), root / "tiny.png"),
        "inside dir.png": images.save(ref, root / "x.jpg" / "inside dir.png"),
    }
    outside = images.save(ref, tmp_path / "elsewhere" / "secret.png")
    truncated = images.jpeg_bytes(images.reference(1), quality=95)
    bad = {
        "empty.jpg": (b"", "empty file"),
        "truncated.jpg": (truncated[: len(truncated) // 2], "corrupt or truncated"),
        "notes.jpg": (b"dear diary\n", "holds text"),
        "page.png": (b"<html><body>Not Found</body></html>", "holds HTML"),
        "random.jpg": (os.urandom(5000), "not an image"),
    }
    for name, (content, _) in bad.items():
        (root / name).write_bytes(content)
    images.png_header_only(40000, 40000, root / "bomb.png")
    images.symlink(outside, root / "escape.png")
    (root / "readme.txt").write_text("not an image")
    (root / "data.csv").write_text("a,b\n")
    reasons = {name: reason for name, (_, reason) in bad.items()}
    reasons["bomb.png"] = "too large: 40000×40000"
    reasons["escape.png"] = "outside the job's roots"
    return root, good, reasons


@pytest.mark.parametrize("chunk_size", [64, 2], ids=["one chunk", "chunks of 2, two at a time"])
def test_awkward_folder_labels_everything_valid_and_explains_the_rest(
    awkward_folder, sqlite_url, chunk_size, monkeypatch
):
    from facelabel.settings import get_settings

    monkeypatch.setenv("FACELABEL_CHUNK_SIZE", str(chunk_size))
    get_settings.cache_clear()
    root, good, reasons = awkward_folder
    result = run("--db", sqlite_url, "label", str(root), "--aligned")
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    total = len(good) + len(reasons)
    assert f"{total} images, {len(good)} faces, {len(reasons)} failures, 2 skipped" in result.output

    rows = json.loads(run("--db", sqlite_url, "query", "--format", "json").output)
    by_name = {os.path.basename(r["path"]): r for r in rows}
    assert set(by_name) == set(good)
    assert all(r["face"] == 0 and os.path.isabs(r["path"]) for r in rows)
    assert by_name["rotated.jpg"]["box_w"] == 178 and by_name["rotated.jpg"]["box_h"] == 218
    assert by_name["tiny.png"]["box_w"] == 8

    failures = json.loads(run("--db", sqlite_url, "failures", "--format", "json").output)
    failed = {os.path.basename(f["path"]): f["reason"] for f in failures}
    assert set(failed) == set(reasons)
    for name, reason in reasons.items():
        assert reason in failed[name], (name, failed[name])

    job = json.loads(run("--db", sqlite_url, "job", "1", "--format", "json").output)[0]
    assert job["status"] == "complete" and job["skipped"] == 2


def probabilities(row):
    return [row[f"p_{a}"] for a in ("eyeglasses", "beard", "mustache", "hat")]


def test_unusual_formats_are_labelled_like_their_plain_twin(awkward_folder, sqlite_url):
    root, good, _ = awkward_folder
    assert run("--db", sqlite_url, "label", str(root), "--aligned").exit_code == 0
    rows = json.loads(run("--db", sqlite_url, "query", "--format", "json").output)
    by_name = {os.path.basename(r["path"]): probabilities(r) for r in rows}
    # Same pixels as reference.png: identical content, so identical probabilities.
    for name in (
        "opaque rgba.png",
        "image.bmp",
        "image.tiff",
        "lossless.webp",
        "ñandú café.png",
        "inside dir.png",
    ):
        assert by_name[name] == by_name["reference.png"], name
    assert by_name["sixteen bit.png"] == by_name["gray.png"]
    assert by_name["palette.gif"] == by_name["animated.gif"] == by_name["palette.png"]
    # Lossy re-encodings of the same picture: close to the plain JPEG.
    for name in ("cmyk.jpg", "rotated.jpg", "progressive.jpg", "UPPER.JPG"):
        diffs = [abs(a - b) for a, b in zip(by_name[name], by_name["reference.jpg"])]
        assert max(diffs) < 0.08, (name, by_name[name], by_name["reference.jpg"])


def test_identical_content_at_two_paths_is_labelled_once_and_listed_twice(tmp_path, sqlite_url):
    root = tmp_path / "dupes"
    first = images.save(images.reference(), root / "a.png")
    (root / "copy.png").write_bytes(first.read_bytes())
    assert run("--db", sqlite_url, "label", str(root), "--aligned").exit_code == 0
    rows = json.loads(run("--db", sqlite_url, "query", "--format", "json").output)
    assert [os.path.basename(r["path"]) for r in rows] == ["a.png", "copy.png"]
    from sqlalchemy import create_engine, text

    with create_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("select count(*) from results")).scalar() == 1
        assert connection.execute(text("select count(*) from images")).scalar() == 1


def test_missing_path_is_a_one_line_error(tmp_path, sqlite_url):
    result = CliRunner().invoke(main, ["--db", sqlite_url, "label", str(tmp_path / "nope"), "--aligned"])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_relabelling_reuses_stored_results(tmp_path, sqlite_url):
    from prometheus_client import REGISTRY

    def classified() -> float:  # faces through the model in this process (the worker's metric)
        return REGISTRY.get_sample_value("facelabel_faces_total") or 0.0

    root = tmp_path / "again"
    images.folder_of_images(root, 5)
    before = classified()
    assert run("--db", sqlite_url, "label", str(root), "--aligned").exit_code == 0
    assert classified() == before + 5
    assert run("--db", sqlite_url, "label", str(root), "--aligned").exit_code == 0
    assert classified() == before + 5, "the model ran again on images it had labelled"
    rows = json.loads(run("--db", sqlite_url, "query", "--format", "json").output)
    assert len(rows) == 5
    jobs = json.loads(run("--db", sqlite_url, "jobs", "--format", "json").output)
    assert [(j["id"], j["status"], j["done"]) for j in jobs] == [(2, "complete", 5), (1, "complete", 5)]


def test_a_file_name_with_terminal_escapes_is_printed_escaped(tmp_path, sqlite_url):
    root = tmp_path / "names"
    images.save(images.reference(), root / "red\x1b[31m\x07.jpg")
    assert run("--db", sqlite_url, "label", str(root), "--aligned").exit_code == 0
    table = run("--db", sqlite_url, "query").output
    assert "red\\x1b[31m\\x07.jpg" in table and "\x1b" not in table and "\x07" not in table
    rows = json.loads(run("--db", sqlite_url, "query", "--format", "json").output)
    assert rows[0]["path"].endswith("red\x1b[31m\x07.jpg")  # data formats keep the name as it is


def test_a_name_that_is_not_utf8_is_labelled_and_shown_escaped(tmp_path, sqlite_url, pg_url):
    root = tmp_path / "archive"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1, as old archives hold
    images.save(images.reference(), root / name)
    images.save(images.reference(1), root / "plain.jpg")
    for url in (sqlite_url, pg_url):
        result = run("--db", url, "label", str(root), "--aligned")
        assert "2 images, 2 faces, 0 failures" in result.output, result.output
        paths = sorted(r["path"] for r in json.loads(run("--db", url, "query", "--format", "json").output))
        assert paths == [str(root / "caf\\xe9.jpg"), str(root / "plain.jpg")]
        assert run("--db", url, "correct", str(root / name), "--set", "hat=1").exit_code == 0
        rows = json.loads(run("--db", url, "query", "--has", "hat", "--format", "json").stdout)
        assert [r["path"] for r in rows if r["path"].endswith("caf\\xe9.jpg")]
