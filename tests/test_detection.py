"""Real photos: faces are detected, framed like CelebA's aligned crops, one row each,
largest first; a photo with no face is reported as such; predict draws its boxes."""

from __future__ import annotations

import base64
import io
import json
import random
import re

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, select

from db.models import Result
from facelabel.settings import Settings
from facelabel.vision.imaging import Box
from tests import images
from tests.helpers import invoke_ok as invoke

pytestmark = pytest.mark.slow
THUMBNAIL = re.compile(r"src='data:image/jpeg;base64,([^']+)'")
PLACES = images.GROUP_PLACES
group_photo = images.group_photo


def test_group_photo_gives_one_row_per_face_largest_first(tmp_path, sqlite_url):
    photos = tmp_path / "photos"
    photos.mkdir()
    group_photo(photos / "group.jpg")
    images.save(images.reference(), photos / "no people.png")
    out = invoke("--db", sqlite_url, "label", photos)
    assert "2 images, 3 faces, 1 failures" in out
    rows = json.loads(invoke("--db", sqlite_url, "query", "--format", "json"))
    assert [r["face"] for r in rows] == [0, 1, 2]
    areas = [r["box_w"] * r["box_h"] for r in rows]
    assert areas == sorted(areas, reverse=True)
    for row, (x, y, scale) in zip(rows, PLACES):  # each box sits inside its pasted face
        assert x <= row["box_x"] and row["box_x"] + row["box_w"] <= x + 178 * scale
        assert y <= row["box_y"] and row["box_y"] + row["box_h"] <= y + 218 * scale
    failures = json.loads(invoke("--db", sqlite_url, "failures", "--format", "json"))
    assert [(f["path"].rsplit("/", 1)[1], f["reason"]) for f in failures] == [
        ("no people.png", "no face found")
    ]
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:  # each face keeps the detector's confidence
        confidences = connection.execute(select(Result.detection_confidence)).scalars().all()
    engine.dispose()
    assert len(confidences) == 3 and all(0.8 <= c <= 1.0 for c in confidences)
    stats = json.loads(invoke("--db", sqlite_url, "stats", "--format", "json"))[0]
    assert (stats["images"], stats["faces"], stats["no_face"]) == (1, 3, 1)

    invoke("--db", sqlite_url, "report", "--job", 1, "--out", tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    thumbnails = [Image.open(io.BytesIO(base64.b64decode(data))) for data in THUMBNAIL.findall(page)]
    assert len(thumbnails) >= 3 and all(t.size == (112, 112) for t in thumbnails)  # each face in a group
    assert "no people.png" in page and "no face found" in page and "<h2>failures: 1</h2>" in page


def test_content_labelled_before_is_not_detected_again(tmp_path, sqlite_url):
    from worker import metrics

    def detector_calls() -> float:
        (family,) = metrics.DETECT_SECONDS.collect()
        return next(s.value for s in family.samples if s.name.endswith("_count"))

    (tmp_path / "photos").mkdir()
    group_photo(tmp_path / "photos" / "group.jpg")
    invoke("--db", sqlite_url, "label", tmp_path / "photos")
    first = json.loads(invoke("--db", sqlite_url, "query", "--format", "json"))
    calls = detector_calls()
    assert calls >= 1
    invoke("--db", sqlite_url, "label", tmp_path / "photos")
    assert detector_calls() == calls  # the results of the first job stand
    assert json.loads(invoke("--db", sqlite_url, "query", "--format", "json")) == first


def test_batched_detection_finds_what_one_photo_at_a_time_finds(tmp_path):
    """Photos of different shapes share an MTCNN batch (padded to the largest); each photo's
    faces must be the ones it has alone, in its own file pixels."""
    from facelabel.vision.faces import NoFace, decode_for_faces, faces_in

    layouts = [((900, 500), PLACES), ((400, 640), ((60, 90, 1.4),)), ((1500, 1000), ((700, 300, 3.0),))]
    photos = [
        decode_for_faces(
            group_photo(tmp_path / f"{i}.jpg", size, places).read_bytes(),
            size=160,
            aligned=False,
            settings=Settings(),
        )
        for i, (size, places) in enumerate(layouts)
    ]
    photos.append(
        decode_for_faces(images.jpeg_bytes(images.reference()), size=160, aligned=False, settings=Settings())
    )
    alone = [faces_in([p], size=160, aligned=False, settings=Settings())[0] for p in photos]
    together = faces_in(photos, size=160, aligned=False, settings=Settings(detect_batch=4))
    assert [len(r.boxes) for r in alone[:3]] == [3, 1, 1] and isinstance(alone[3], NoFace)
    assert isinstance(together[3], NoFace)
    for one, batched in zip(alone[:3], together[:3]):
        assert len(batched.boxes) == len(one.boxes)
        for a, b in zip(one.boxes, batched.boxes):  # the pyramid's grid shifts a little, no more
            assert iou(a, b) > 0.8, (a, b)


def iou(a: Box, b: Box) -> float:
    w = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return w * h / (a.area + b.area - w * h)


def test_huge_photo_is_detected_in_file_coordinates(tmp_path, sqlite_url):
    path = group_photo(tmp_path / "huge.jpg", size=(6000, 4000), places=((2500, 1500, 6.0),))
    rows = json.loads(invoke("predict", path))
    assert len(rows) == 1
    box = rows[0]["box"]
    assert 2500 <= box["x"] and box["x"] + box["w"] <= 2500 + 178 * 6
    assert box["w"] > 500  # in file pixels, not the detection copy's


def test_predict_out_draws_the_boxes(tmp_path):
    path = group_photo(tmp_path / "group.jpg")
    rows = json.loads(invoke("predict", path, "--out", tmp_path / "annotated.jpg"))
    assert len(rows) == 3 and set(rows[0]["probabilities"]) == {"eyeglasses", "beard", "mustache", "hat"}
    assert all(0.8 <= r["confidence"] <= 1.0 for r in rows)  # the detector's, at least the minimum
    before = np.asarray(Image.open(path), dtype=np.int16)
    after = np.asarray(Image.open(tmp_path / "annotated.jpg"), dtype=np.int16)
    assert after.shape == before.shape
    box = rows[0]["box"]
    left_edge = np.abs(
        after[box["y"] + 20 : box["y"] + box["h"] - 20, box["x"]]
        - before[box["y"] + 20 : box["y"] + box["h"] - 20, box["x"]]
    )
    assert left_edge.mean() > 40  # a coloured line along the box's left edge
    assert np.abs(after[5:50, 400:600] - before[5:50, 400:600]).mean() < 3  # background untouched


def test_predict_on_a_photo_without_faces_prints_an_empty_list(tmp_path):
    path = images.save(images.reference(), tmp_path / "pattern.png")
    assert json.loads(invoke("predict", path)) == []


def test_largest_wild_face_is_found(celeba_dir):
    """On 60 of CelebA's in-the-wild photos, the labelled face is almost always found."""
    from facelabel.vision.faces import NoFace, find_faces

    paths = sorted((celeba_dir / "wild" / "images").glob("*.jpg"))
    sample = random.Random(0).sample(paths, 60)
    settings = Settings()
    found = 0
    for path in sample:
        try:
            find_faces(path.read_bytes(), size=160, aligned=False, settings=settings)
            found += 1
        except NoFace:
            pass
    assert found >= 57, f"faces found in {found} of 60 photos"
