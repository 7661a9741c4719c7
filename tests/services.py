"""Make sure the Redis and PostgreSQL the tests use are up: reuse running servers, else
start the machine's own (`python -m tests.services`, called by `make test`)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

from tests.conftest import PG_ADMIN_URL, REDIS_URL


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_listening(host: str, port: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if listening(host, port):
            return True
        time.sleep(0.5)
    return False


def start_redis(host: str, port: int) -> None:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit(
            f"Redis is not listening on {host}:{port} and redis-server is not installed "
            "(apt-get install redis-server, or set FACELABEL_TEST_REDIS_URL)"
        )
    subprocess.run(
        [
            server,
            "--daemonize",
            "yes",
            "--bind",
            host,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )


def start_postgres(host: str, port: int) -> None:
    clusters = glob.glob("/etc/postgresql/*/main")
    if not clusters or shutil.which("pg_ctlcluster") is None:
        sys.exit(
            f"PostgreSQL is not listening on {host}:{port} and no local cluster was found "
            "(apt-get install postgresql, or set FACELABEL_TEST_PG_URL)"
        )
    version = clusters[0].split("/")[3]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)


def main() -> None:
    for name, url, start, default_port in (
        ("Redis", REDIS_URL, start_redis, 6379),
        ("PostgreSQL", PG_ADMIN_URL, start_postgres, 5432),
    ):
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
        if listening(host, port):
            print(f"{name}: reusing the server on {host}:{port}")
            continue
        print(f"{name}: starting a server on {host}:{port}")
        start(host, port)
        if not wait_listening(host, port):
            sys.exit(f"{name} did not come up on {host}:{port}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
