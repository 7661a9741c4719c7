"""Scale of the bookkeeping, against the real PostgreSQL and Redis:

- ``enqueue`` of 100k small files (no worker running): wall time and peak memory, and the
  same at 10k to show memory stays flat;
- ``query --has eyeglasses --limit 100`` and ``stats`` over 1M result rows.

Usage: python bench/database.py [--files 100000] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, Timer, peak_rss_mib  # noqa: E402
from tests.helpers import fresh_pg_database  # noqa: E402

SEED_ROWS = """
INSERT INTO model_versions
    (id, name, path, sha256, backbone, input_size, thresholds, metrics, meta, is_active, created_at)
VALUES (1, 'bench', '/nowhere', repeat('0', 64), 'mobilenet', 160, '{}', '{}', '{}', false, now());
INSERT INTO jobs (id, status, roots, options, model_version_id, images, finished, skipped, created_at)
VALUES (1, 'complete', '["/bench"]', '{}', 1, :n, :n, 0, now());
INSERT INTO images (id, sha256, size_bytes, width, height)
SELECT i, md5(i::text) || md5((-i)::text), 10000, 178, 218 FROM generate_series(1, :n) AS i;
INSERT INTO files (id, path, image_id, read_at)
SELECT i, '/bench/' || (i % 1000) || '/img_' || i || '.jpg', i, now() FROM generate_series(1, :n) AS i;
INSERT INTO job_items (job_id, file_id, status, faces, finished_at)
SELECT 1, i, 'done', 1, now() FROM generate_series(1, :n) AS i;
INSERT INTO results (image_id, model_version_id, detector, face, box_x, box_y, box_w, box_h,
                     p_eyeglasses, p_beard, p_mustache, p_hat,
                     eyeglasses, beard, mustache, hat, is_current)
SELECT i, 1, 'none', 0, 0, 0, 178, 218, p[1], p[2], p[3], p[4],
       p[1] > 0.95, p[2] > 0.85, p[3] > 0.95, p[4] > 0.95, true
FROM (SELECT i, ARRAY[random(), random(), random(), random()] AS p FROM generate_series(1, :n) AS i) AS g;
SELECT setval(pg_get_serial_sequence('images', 'id'), :n);
SELECT setval(pg_get_serial_sequence('files', 'id'), :n);
ANALYZE;
"""


def run_cli(env: dict, *args: str) -> tuple[float, str]:
    """Wall seconds and stdout of one ``facelabel`` command."""
    with Timer() as timer:
        result = subprocess.run(
            [sys.executable, "-m", "facelabel", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
    return timer.seconds, result.stdout


def enqueue_many(count: int, scratch: Path) -> tuple[float, int]:
    import redis

    folder = scratch / f"files_{count}"
    for index in range(count):
        directory = folder / f"d{index // 1000:03d}"
        if index % 1000 == 0:
            directory.mkdir(parents=True)
        (directory / f"f{index:06d}.jpg").write_bytes(b"\xff\xd8 tiny")
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        "FACELABEL_DB_URL": fresh_pg_database(f"facelabel_bench_enqueue_{count}"),
        "FACELABEL_BROKER_URL": REDIS_URL,
    }
    run_cli(env, "migrate")
    seconds, _ = run_cli(env, "enqueue", str(folder), "--aligned")
    peak = peak_rss_mib(["enqueue", str(folder), "--aligned"], env)  # a second enqueue, alone
    redis.Redis.from_url(REDIS_URL).flushdb()
    return seconds, peak


def million_rows(rows: int) -> dict[str, float]:
    from sqlalchemy import text

    from db.engine import open_database
    from db.queries import query_faces, stats

    url = fresh_pg_database("facelabel_bench_rows")
    sessions = open_database(url)
    with sessions.begin() as session:
        for statement in SEED_ROWS.strip().split(";\n"):
            session.execute(text(statement), {"n": rows})
    timings = {}
    with sessions() as session:
        for name, call in (
            (
                "query --has eyeglasses --limit 100",
                lambda: list(query_faces(session, has=["eyeglasses"], limit=100)),
            ),
            ("stats", lambda: stats(session)),
        ):
            call()  # warm the cache, as a server that is in use would be
            started = time.perf_counter()
            for _ in range(3):
                result = call()
            timings[name] = (time.perf_counter() - started) / 3
            assert result
    env = {"FACELABEL_DB_URL": url}
    timings["CLI query (whole command)"] = run_cli(env, "query", "--has", "eyeglasses", "--limit", "100")[0]
    timings["CLI stats (whole command)"] = run_cli(env, "stats")[0]
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facelabel-bench-") as scratch:
        small = enqueue_many(args.files // 10, Path(scratch))
        large = enqueue_many(args.files, Path(scratch))
    print(f"enqueue {args.files // 10:>7} files: {small[0]:6.2f} s, peak RSS {small[1]} MiB")
    print(f"enqueue {args.files:>7} files: {large[0]:6.2f} s, peak RSS {large[1]} MiB")
    for name, seconds in million_rows(args.rows).items():
        print(f"{args.rows} result rows, {name}: {seconds:.3f} s")


if __name__ == "__main__":
    main()
