"""Each face detector finds the faces of a group photo where they are; framing from boxes
and from landmarks lands on CelebA's aligned frame; a job keeps its detector and a re-run
with another one is a result set of its own."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from facelabel.settings import Settings
from facelabel.vision.detectors import FRAME, NAMES, backend_class
from facelabel.vision.faces import decode_for_faces, faces_in
from facelabel.vision.imaging import Box, Decoded, crop_face, crop_quad, landmark_framing
from tests import images
from tests.helpers import invoke_ok as invoke

# The example face's box inside its 178×218 aligned frame (MTCNN's margins undone); each
# pasted copy's box scales with it.
FACE_IN_FRAME = (47.8, 66.6, 82.6, 114.1)


def _expected_boxes() -> list[tuple[float, float, float, float]]:
    x, y, w, h = FACE_IN_FRAME
    return [(px + x * s, py + y * s, w * s, h * s) for px, py, s in images.GROUP_PLACES]


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


def _faces(path, detector: str, framing: str = "box"):
    settings = Settings(detector=detector, face_framing=framing)
    photo = decode_for_faces(path.read_bytes(), size=160, aligned=False, settings=settings)
    return faces_in([photo], size=160, aligned=False, settings=settings)[0]


@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_every_face_of_a_group_photo_is_found_where_it_is(tmp_path, detector):
    found = _faces(images.group_photo(tmp_path / "group.jpg"), detector)
    assert len(found.boxes) == 3
    for box, expected in zip(found.boxes, _expected_boxes()):  # largest first, like the places
        assert _iou((box.x, box.y, box.w, box.h), expected) >= 0.5, (box, expected)
    assert all(crop.shape == (160, 160, 3) for crop in found.crops)


def test_blazeface_finds_the_larger_faces_of_a_group_photo(tmp_path):
    """BlazeFace sees the photo letterboxed to 192 px: the 55-pixel face of this 900-pixel
    photo is under its reach (the README says so); the others are found where they are."""
    found = _faces(images.group_photo(tmp_path / "group.jpg"), "blazeface")
    for box, expected in zip(found.boxes, _expected_boxes()[:2]):
        assert _iou((box.x, box.y, box.w, box.h), expected) >= 0.5, (box, expected)
    assert len(found.boxes) == 2


@pytest.mark.parametrize("detector, tolerance", [("yunet", 0.05), ("mtcnn", 0.05), ("blazeface", 0.08)])
def test_landmark_framing_puts_the_face_where_an_aligned_frame_has_it(tmp_path, detector, tolerance):
    """On a photo that is an aligned frame pasted at an offset and a scale, the landmark
    similarity finds the frame again, to a few percent of its width (BlazeFace's three
    points are the coarsest: research/fit_framing.py measures each)."""
    pasted = Image.new("RGB", (600, 500), (180, 190, 200))
    pasted.paste(Image.open(images.FACE).resize((267, 327)), (150, 80))  # ×1.5
    path = tmp_path / "one.jpg"
    pasted.save(path, quality=95)
    settings = Settings(detector=detector)
    photo = decode_for_faces(path.read_bytes(), size=160, aligned=False, settings=settings)
    from facelabel.vision.detector import detect_faces

    (((detection, *_), _),) = detect_faces(
        [photo], detector=detector, max_side=None, min_face=20, min_confidence=None
    )
    backend = backend_class(detector)
    corners = landmark_framing(detection.points, backend.template, FRAME)
    truth = np.array([[150, 80], [417, 80], [417, 407], [150, 407]])
    assert np.abs(corners - truth).mean() < tolerance * 267


def test_crop_quad_of_an_upright_frame_is_the_box_crop():
    decoded = Decoded(images.reference(3, 300, 240), 300, 240)
    corners = np.array([[40, 30], [200, 30], [200, 220], [40, 220]], np.float64)
    quad = crop_quad(decoded, corners, 64).astype(int)
    box = crop_face(decoded, Box(40, 30, 160, 190), 64).astype(int)
    assert np.abs(quad - box).mean() < 4


def test_a_rotated_frame_is_cropped_upright():
    """A frame rotated by 90° about its centre shows the picture turned a quarter."""
    picture = np.zeros((200, 200, 3), np.uint8)
    picture[20:60, 80:120] = 255  # a white square near the top edge
    decoded = Decoded(Image.fromarray(picture), 200, 200)
    turned = np.array([[200, 0], [200, 200], [0, 200], [0, 0]], np.float64)  # top-left at top-right
    crop = crop_quad(decoded, turned, 100)
    assert crop[40:60, 10:30].mean() > 200  # the square now sits near the left edge
    assert crop[5:25, 40:60].mean() < 50


@pytest.mark.slow
def test_a_job_keeps_its_detector_and_another_detector_is_another_result_set(
    tmp_path, sqlite_url, monkeypatch
):
    photos = tmp_path / "photos"
    photos.mkdir()
    images.group_photo(photos / "group.jpg")
    monkeypatch.setenv("FACELABEL_DETECTOR", "mtcnn")
    _reset_settings()
    invoke("--db", sqlite_url, "label", photos)
    monkeypatch.setenv("FACELABEL_DETECTOR", "yunet")
    _reset_settings()
    invoke("--db", sqlite_url, "label", photos)
    rows = json.loads(invoke("--db", sqlite_url, "query", "--format", "json"))
    assert [r["face"] for r in rows] == [0, 1, 2]  # the newest set only, no duplicates
    jobs = [json.loads(invoke("--db", sqlite_url, "job", n, "--format", "json"))[0] for n in ("1", "2")]
    assert [job["detector"] for job in jobs] == ["mtcnn", "yunet"]
    from sqlalchemy import create_engine, text

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        sets = connection.execute(
            text(
                "SELECT detector, count(*), sum(is_current) FROM results GROUP BY detector ORDER BY detector"
            )
        ).all()
    engine.dispose()
    assert [tuple(s) for s in sets] == [("mtcnn", 3, 0), ("yunet", 3, 3)]
    _reset_settings()


def _reset_settings():
    from facelabel.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture
def wild_photos(celeba_dir):
    folder = celeba_dir / "wild" / "images"
    return sorted(folder.glob("*.jpg"))[:40]


@pytest.mark.parametrize("detector", NAMES)
def test_each_detector_finds_the_face_of_real_photos(wild_photos, detector):
    found = [_faces(path, detector) for path in wild_photos]
    with_face = [f for f in found if hasattr(f, "boxes")]
    assert len(with_face) >= 0.95 * len(wild_photos)
    for faces in with_face:  # each box lies in its photo
        box = faces.boxes[0]
        assert box.x >= 0 and box.y >= 0 and box.x + box.w <= faces.decoded.width


@pytest.mark.parametrize("detector", NAMES)
def test_each_detectors_framing_numbers_are_its_own(celeba_dir, detector):
    """Re-fit on 150 aligned images (research/fit_framing.py), the margins and template come
    out within a few hundredths (a few pixels) of what the backend carries."""
    from research.fit_framing import detections, fit

    paths = sorted((celeba_dir / "aligned" / "images").glob("*.jpg"))[:150]
    margins, template = fit(*detections(detector, paths))
    backend = backend_class(detector)
    assert np.abs(margins - backend.margins).max() < 0.04
    assert np.abs(template - backend.template).max() < 3.0


def test_detector_choice_is_checked_before_anything_loads():
    os.environ.pop("FACELABEL_DETECTOR", None)
    with pytest.raises(Exception, match="yunet"):
        Settings(detector="retinaface")
