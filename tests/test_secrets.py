"""Passwords with any characters work when passed apart from the URLs, and no command prints
one, errors included."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from click.testing import CliRunner

from facelabel.cli import main
from facelabel.settings import get_settings
from tests import images

PASSWORD = "p@ss/w#rd:%?&x"


@pytest.fixture
def redis_with_password():
    """A Redis server of this test's own that requires PASSWORD."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [server, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    config = f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\nrequirepass "{PASSWORD}"\n'
    process.stdin.write(config.encode())
    process.stdin.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def _cli(monkeypatch, env: dict, *args: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        get_settings.cache_clear()


def test_special_character_passwords_work_apart_from_the_urls(
    tmp_path, pg_url, redis_with_password, monkeypatch
):
    images.folder_of_images(tmp_path / "photos", 3)
    env = {
        "FACELABEL_DB_URL": pg_url,  # trust authentication: the password is sent and not needed
        "FACELABEL_DB_PASSWORD": PASSWORD,
        "FACELABEL_BROKER_URL": redis_with_password,
        "FACELABEL_BROKER_PASSWORD": PASSWORD,
    }
    result = _cli(monkeypatch, env, "enqueue", str(tmp_path / "photos"), "--aligned")
    assert result.exit_code == 0, result.output
    assert "3 images queued" in result.output and PASSWORD not in result.output


def test_a_refused_password_is_a_one_line_error_that_does_not_show_it(
    tmp_path, sqlite_url, redis_with_password, monkeypatch
):
    images.folder_of_images(tmp_path / "photos", 1)
    env = {"FACELABEL_BROKER_URL": redis_with_password, "FACELABEL_BROKER_PASSWORD": PASSWORD + "wrong"}
    result = _cli(monkeypatch, env, "--db", sqlite_url, "enqueue", str(tmp_path / "photos"), "--aligned")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot reach the broker")
    assert result.output.count("\n") == 1 and "p@ss" not in result.output and "wrong" not in result.output


@pytest.mark.parametrize("password", [PASSWORD, "plain-secret"])
def test_a_password_inside_a_database_url_is_not_shown_in_its_error(monkeypatch, password):
    """A URL that cannot carry its password is refused without showing it; one that can is
    masked in the connection error."""
    env = {"FACELABEL_DB_URL": f"postgresql+psycopg://someone:{password}@127.0.0.1:1/nothing"}
    for args in (("stats",), ("--db", env["FACELABEL_DB_URL"], "stats")):
        result = _cli(monkeypatch, env, *args)
        assert result.exit_code == 1 and result.output.startswith("Error: ")
        assert result.output.count("\n") == 1
        assert password[:4] not in result.output and password[-4:] not in result.output, result.output
