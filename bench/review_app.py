"""The review app's pages over 1M result rows in the real PostgreSQL: each page's whole
request (query, template, response) through the app in this process, the median of 5 after
one warm-up, as a server in use would answer. Thumbnails are separate requests and are not
timed here.

Usage: python bench/review_app.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.database import SEED_ROWS  # noqa: E402
from tests.helpers import fresh_pg_database  # noqa: E402

PAGES = (
    ("faces, first page", "/faces"),
    ("faces, page 2000 (keyset)", "/faces?after_path=/bench/500/img_500500.jpg&after_face=0"),
    ("faces, has hat", "/faces?f_hat=has"),
    ("faces, beard and not eyeglasses, min prob 0.7", "/faces?f_beard=has&f_eyeglasses=not&min_prob=0.7"),
    ("faces, one job", "/faces?job=1"),
    ("faces, path glob", "/faces?path=/bench/999/*"),
    ("review hat (least sure first)", "/review/hat"),
    ("jobs", "/jobs"),
    ("models", "/models"),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from sqlalchemy import text
    from starlette.testclient import TestClient

    from db.engine import open_database
    from facelabel.settings import Settings
    from facelabel.web.app import create_app

    url = fresh_pg_database("facelabel_bench_web")
    sessions = open_database(url)
    with sessions.begin() as session:
        for statement in SEED_ROWS.strip().split(";\n"):
            session.execute(text(statement), {"n": args.rows})
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings(db_url=url, cache_dir=cache)
        client = TestClient(create_app(settings, sessions, token=None))
        for name, path in PAGES:
            assert client.get(path).status_code == 200, path
            times = []
            for _ in range(5):
                started = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
            print(f"{args.rows} rows, {name}: {1000 * statistics.median(times):.0f} ms")


if __name__ == "__main__":
    main()
