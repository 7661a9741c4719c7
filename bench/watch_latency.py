"""``facelabel watch`` latency: from a file's close under the watched folder to its result row
(the job item's ``finished_at``), median and p95, for files arriving one at a time: labelled
in the watcher's process, and with ``--enqueue`` through Redis to a real worker process.
Aligned faces (``--aligned``); a fresh PostgreSQL database per mode; model warm first.

Usage: python bench/watch_latency.py [--files 40] [--interval 1.5] [--mode embedded --mode enqueue]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, aligned_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=40, help="Files timed per mode.")
    parser.add_argument("--interval", type=float, default=1.5, help="Seconds between two files' arrivals.")
    parser.add_argument(
        "--mode", choices=["embedded", "enqueue"], action="append", help="Repeat (default: both)."
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.files} aligned faces, one every {args.interval:g} s")
    print("| mode | files | median s | p95 s | max s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="facelabel-bench-") as scratch:
        sources = sorted(aligned_folder(Path(scratch) / "faces", args.files + 2).iterdir())
        for mode in args.mode or ["embedded", "enqueue"]:
            latencies = measure(Path(scratch) / mode, sources, mode, args.interval)
            cut = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
            print(
                f"| {mode} | {len(latencies)} | {statistics.median(latencies):.2f} | {cut:.2f} "
                f"| {max(latencies):.2f} |",
                flush=True,
            )


def measure(folder: Path, sources: list[Path], mode: str, interval: float) -> list[float]:
    """Seconds from each timed file's close to its result row."""
    import redis

    from tests.helpers import fresh_pg_database

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        **os.environ,
        "FACELABEL_DB_URL": fresh_pg_database(f"facelabel_bench_watch_{mode}"),
        "FACELABEL_BROKER_URL": REDIS_URL,
    }
    root = folder / "photos"
    root.mkdir(parents=True)
    command = [sys.executable, "-m", "facelabel", "watch", str(root), "--aligned"]
    processes = [_start(command + (["--enqueue"] if mode == "enqueue" else []), env)]
    if mode == "enqueue":
        processes.append(_start([sys.executable, "-m", "facelabel", "worker", "--loglevel", "WARNING"], env))
    try:
        warm, timed = sources[:2], sources[2:]
        for source in warm:  # the model loads and the first job runs before any file is timed
            shutil.copyfile(source, root / source.name)
        _wait(env["FACELABEL_DB_URL"], [root / s.name for s in warm], timeout=300)
        closed = {}
        for source in timed:
            target = root / source.name
            shutil.copyfile(source, target)  # open, write, close: the close is the arrival
            closed[str(target)] = time.time()
            time.sleep(interval)
        finished = _wait(env["FACELABEL_DB_URL"], [Path(p) for p in closed], timeout=120 + 5 * len(timed))
        return [finished[path] - closed[path] for path in closed]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


def _start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(url: str, paths: list[Path], timeout: float) -> dict[str, float]:
    """When each path's first job item finished (epoch seconds), once all have one."""
    from sqlalchemy import func, select

    from db.engine import open_database
    from db.models import File, JobItem

    sessions = open_database(url)
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            rows = session.execute(
                select(File.path, func.min(JobItem.finished_at))
                .join(JobItem, JobItem.file_id == File.id)
                .where(File.path.in_([str(p) for p in paths]))
                .group_by(File.path)
            ).all()
        if len(rows) == len(paths):
            return {path: when.timestamp() for path, when in rows}
        if time.monotonic() > deadline:
            sys.exit(f"only {len(rows)} of {len(paths)} files labelled after {timeout:g} s")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
