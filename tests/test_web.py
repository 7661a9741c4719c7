"""The review app over HTTP (Starlette's test client, a real SQLite database labelled by the
CLI): pages, filters that agree with ``query``, keyset pages, reviewing stored as
corrections, the token and CSRF rules, images only from inside a job's roots."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from PIL import Image
from starlette.testclient import TestClient

from facelabel.cli.common import sessions_for
from facelabel.settings import BUNDLED_MODEL, Settings
from facelabel.web.app import create_app
from tests import images
from tests.helpers import invoke_ok as invoke
from tests.helpers import query_rows


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """60 labelled photos (aligned: one face each), one with a name that needs escaping."""
    root = tmp_path_factory.mktemp("web")
    folder = images.synthetic_celeba(root, count=60)
    (folder / "000060.jpg").rename(folder / "<img src=x onerror=alert(1)>.jpg")
    url = f"sqlite:///{root / 'facelabel.db'}"
    invoke("--db", url, "label", folder, "--aligned")
    return root, folder, url


def client(labelled, tmp_path, token=None) -> TestClient:
    root, _, url = labelled
    settings = Settings(db_url=url, cache_dir=tmp_path / "cache")
    return TestClient(create_app(settings, sessions_for(settings), token=token))


def result_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/face/(\d+)"', page)]


def test_the_faces_grid_pages_through_every_face_once(labelled, tmp_path):
    web = client(labelled, tmp_path)
    first = web.get("/faces")
    assert first.status_code == 200
    shown = result_ids(first.text)
    assert len(shown) == 48
    following = re.search(r'id="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = web.get("/faces" + following)
    shown += result_ids(second.text)
    assert 'id="next"' not in second.text
    assert sorted(shown) == sorted({r["result_id"] for r in _rows(labelled[2])})
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in first.text + second.text
    assert "<img src=x" not in first.text + second.text


def _rows(url):
    from db.queries import query_faces

    settings = Settings(db_url=url)
    with sessions_for(settings)() as session:
        return list(query_faces(session))


def test_filters_show_what_query_shows(labelled, tmp_path):
    web = client(labelled, tmp_path)
    _, _, url = labelled
    page = web.get("/faces", params={"f_hat": "not", "min_prob": "0.3"})
    expected = query_rows(url, "--not", "hat", "--min-prob", "0.3")
    shown = re.findall(r'class="name" title="([^"]+) face (\d+)"', page.text)
    assert expected and shown == [(r["path"], str(r["face"])) for r in expected[:48]]
    assert "must lie between 0 and 1" in web.get("/faces", params={"min_prob": "7"}).text
    assert "no model version" in web.get("/faces", params={"model_version": "nope"}).text


def test_a_has_filter_shows_the_faces_a_person_marked(labelled, tmp_path):
    web = client(labelled, tmp_path)
    _, folder, url = labelled
    marked = str(folder / "000011.jpg")
    invoke("--db", url, "correct", marked, "--set", "mustache=1")
    page = web.get("/faces", params={"f_mustache": "has"}).text
    shown = re.findall(r'class="name" title="([^"]+) face (\d+)"', page)
    assert (marked, "0") in shown and len(shown) == len(query_rows(url, "--has", "mustache"))


def test_thumbnails_are_cut_once_and_cached(labelled, tmp_path):
    web = client(labelled, tmp_path)
    rid = result_ids(web.get("/faces").text)[0]
    response = web.get(f"/thumb/{rid}.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert "max-age" in response.headers["cache-control"]
    cached = list((tmp_path / "cache" / "thumbnails").rglob("*.jpg"))
    assert len(cached) == 1
    cached[0].write_bytes(_jpeg((1, 2, 3)))  # served from the cache, not cut again
    assert web.get(f"/thumb/{rid}.jpg").content == cached[0].read_bytes()
    photo = web.get(f"/photo/{rid}.jpg")
    assert photo.status_code == 200 and Image.open(__import__("io").BytesIO(photo.content)).size[0] > 0


def _jpeg(colour) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_photo_swapped_for_a_link_outside_the_roots_is_not_served(labelled, tmp_path):
    root, folder, url = labelled
    web = client(labelled, tmp_path)
    row = next(r for r in _rows(url) if r["path"].endswith("000007.jpg"))
    moved = tmp_path / "outside.jpg"
    shutil.move(folder / "000007.jpg", moved)
    (folder / "000007.jpg").symlink_to(moved)
    try:
        assert web.get(f"/photo/{row['result_id']}.jpg").status_code == 404
        assert web.get(f"/thumb/{row['result_id']}.jpg").status_code == 404
    finally:
        (folder / "000007.jpg").unlink()
        shutil.move(moved, folder / "000007.jpg")
    assert web.get("/photo/..%2F..%2Fetc%2Fpasswd").status_code == 404  # no path ever comes from a URL


def _answer(web, attribute, page, answer, csrf=None):
    rid = re.search(r'name="result_id" value="(\d+)"', page).group(1)
    distance = re.search(r'name="distance" value="([^"]+)"', page).group(1)
    token = csrf if csrf is not None else re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"csrf": token, "result_id": rid, "distance": distance, "answer": answer}
    return int(rid), web.post(f"/review/{attribute}", data=form, follow_redirects=True)


def test_review_answers_are_corrections_that_query_shows(labelled, tmp_path):
    _, _, url = labelled
    web = client(labelled, tmp_path)
    page = web.get("/review/beard").text
    queue = [int(i) for i in re.findall(r'href="/face/(\d+)"', page)]
    assert len(queue) >= 2
    rid, response = _answer(web, "beard", page, "yes")
    assert response.status_code == 200 and f"Saved face {rid}" in response.text
    skipped, response = _answer(web, "beard", response.text, "skip")
    assert f'data-result="{skipped}"' not in response.text
    corrected = [r for r in _rows(url) if "beard" in r["corrected"]]
    assert [(r["result_id"], r["beard"], r["corrected"]) for r in corrected] == [(rid, 1, "beard")]
    path = corrected[0]["path"]
    assert [r["beard"] for r in query_rows(url, "--path", path)] == [1]  # query shows the person's answer
    assert f'data-result="{rid}"' not in web.get("/review/beard").text  # answered faces leave the queue
    history = web.get(f"/face/{rid}").text
    assert "review app" in history and "beard" in history


def test_a_form_without_its_csrf_token_changes_nothing(labelled, tmp_path):
    _, _, url = labelled
    web = client(labelled, tmp_path)
    before = [r for r in _rows(url) if "hat" in r["corrected"]]
    page = web.get("/review/hat").text
    _, response = _answer(web, "hat", page, "no", csrf="forged")
    assert response.status_code == 403 and "another site" in response.text
    assert [r for r in _rows(url) if "hat" in r["corrected"]] == before


def test_off_loopback_changes_need_the_token(labelled, tmp_path):
    web = client(labelled, tmp_path, token="s3cret-token")
    page = web.get("/review/mustache").text
    assert "read-only" in page and "disabled" in page
    _, response = _answer(web, "mustache", page, "yes")
    assert response.status_code == 403 and "token" in response.text
    assert web.get("/login", params={"token": "wrong"}).status_code == 403
    web.get("/login", params={"token": "s3cret-token"})
    page = web.get("/review/mustache").text
    _, response = _answer(web, "mustache", page, "yes")
    assert response.status_code == 200 and "Saved face" in response.text


def test_jobs_models_and_a_face_page(labelled, tmp_path):
    web = client(labelled, tmp_path)
    jobs = web.get("/jobs").text
    assert 'href="/jobs/1"' in jobs and "mobilenetv2" in jobs
    job = web.get("/jobs/1").text
    assert "60 done" in job or "59 done" in job
    models = web.get("/models")
    assert models.status_code == 200 and "mobilenetv2" in models.text
    crossval = json.loads((BUNDLED_MODEL / "report" / "crossval.json").read_text())
    pooled = crossval["sets"]["all training folders"]
    low, high = pooled["macro_f1_95"]
    assert "<th>new-person macro-F1 (95 %)</th>" in models.text and "val macro-F1" not in models.text
    assert f"<td>{pooled['macro_f1']} ({low}–{high})</td><td>3-fold cross-validation by person" in models.text
    assert web.get("/face/999999").status_code == 404
    assert web.get("/review/nose").status_code == 404
    assert web.get("/jobs/1").headers["content-security-policy"].startswith("default-src 'self'")


def test_with_basic_auth_every_page_asks_for_it(labelled, tmp_path):
    import base64

    _, _, url = labelled
    settings = Settings(db_url=url, cache_dir=tmp_path / "cache", serve_basic_auth="ana:pa:ss/word")
    web = TestClient(create_app(settings, sessions_for(settings), token="t0ken"))
    assert web.get("/faces").status_code == 401 and web.get("/healthz").status_code == 200
    wrong = base64.b64encode(b"ana:nope").decode()
    assert web.get("/faces", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    web.headers["Authorization"] = "Basic " + base64.b64encode(b"ana:pa:ss/word").decode()
    page = web.get("/review/eyeglasses").text
    _, response = _answer(web, "eyeglasses", page, "no")  # who passed basic auth may change things
    assert response.status_code == 200 and "Saved face" in response.text
