"""The review app in a real headless Chromium (Debian's, driven by Playwright), served by
``facelabel serve`` in its own process: browse the faces of a labelled job, filter by an
attribute, review five faces with the keyboard, and find the answers in ``facelabel query``.
Each page's screenshot is saved under build/screenshots/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests import images
from tests.helpers import invoke_ok as invoke
from tests.helpers import query_rows, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (.ci/run installs Debian's)"),
]


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    folder = images.synthetic_celeba(tmp_path, count=24)
    url = f"sqlite:///{tmp_path / 'facelabel.db'}"
    invoke("--db", url, "label", folder, "--aligned")
    for name in ("000003.jpg", "000005.jpg"):  # bearded by a person, whatever the model says
        invoke("--db", url, "correct", folder / name, "--set", "beard=1")
    port = _port()
    env = {**os.environ, "FACELABEL_DB_URL": url, "FACELABEL_CACHE_DIR": str(tmp_path / "cache")}
    log = open(tmp_path / "serve.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "facelabel", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base + "/jobs"), timeout=60, what="facelabel serve")
        yield base, url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_filter_and_review_five_faces_with_the_keyboard(server):
    from playwright.sync_api import sync_playwright

    base, url = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/faces")
        assert page.locator("figure.face").count() == 24
        first = "document.querySelector('figure.face img')"  # thumbnails load lazily: wait for one
        page.wait_for_function(f"() => {first}.complete && {first}.naturalWidth > 0", timeout=30_000)
        page.screenshot(path=SHOTS / "faces.png", full_page=True)

        page.select_option("#f_beard", "has")
        page.click("button[type=submit]")
        page.wait_for_url("**f_beard=has**")
        assert page.locator("figure.face").count() == len(query_rows(url, "--has", "beard")) >= 2
        page.screenshot(path=SHOTS / "faces-beard.png", full_page=True)

        page.goto(base + "/review/hat")
        answers = {}
        for key in "ynysn":
            shown = int(page.locator("#review").get_attribute("data-result"))
            with page.expect_navigation():
                page.keyboard.press(key)
            answers[shown] = key
        page.screenshot(path=SHOTS / "review.png", full_page=True)

        for name, path in (("jobs", "/jobs"), ("job", "/jobs/1"), ("models", "/models")):
            page.goto(base + path)
            page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
        face = next(r for r, k in answers.items() if k == "y")
        page.goto(base + f"/face/{face}")
        assert page.locator("text=review app").count() == 1
        page.screenshot(path=SHOTS / "face.png", full_page=True)
        browser.close()

    assert len(answers) == 5 and list(answers.values()).count("s") == 1
    from db.queries import query_faces
    from facelabel.cli.common import sessions_for
    from facelabel.settings import Settings

    with sessions_for(Settings(db_url=url))() as session:
        rows = {r["result_id"]: r for r in query_faces(session)}
    for result_id, key in answers.items():
        path = rows[result_id]["path"]
        (shown,) = query_rows(url, "--path", path)
        if key == "s":
            assert "hat" not in rows[result_id]["corrected"]
        else:
            assert rows[result_id]["corrected"] == "hat" and shown["hat"] == (key == "y")
