"""Shared bench helpers: image folders, services, timing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REDIS_URL = os.environ.get("FACELABEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def aligned_folder(target: Path, count: int) -> Path:
    """``count`` aligned 178×218 JPEGs: CelebA's (copied to a scratch folder, never into the
    repo) when FACELABEL_CELEBA_DIR is set, else synthetic ones."""
    target.mkdir(parents=True, exist_ok=True)
    celeba = os.environ.get("FACELABEL_CELEBA_DIR")
    if celeba:
        sources = sorted((Path(celeba) / "aligned" / "images").glob("*.jpg"))[:count]
        for source in sources:
            shutil.copyfile(source, target / source.name)
        if len(sources) == count:
            return target
    from tests.images import reference

    for index in range(count):
        reference(index).save(target / f"synthetic_{index:06d}.jpg", quality=90)
    return target


def peak_rss_mib(args: list[str], env: dict | None = None) -> int:
    """Peak RSS (MiB) of ``facelabel ARGS`` alone in a fresh process: its VmHWM, which starts
    afresh at exec (ru_maxrss would also count the benchmark process the fork copied)."""
    return measured_run(args, env)[0]


def measured_run(args: list[str], env: dict | None = None) -> tuple[int, str]:
    """``facelabel ARGS`` in a fresh process: (its peak RSS in MiB, what it printed)."""
    code = (
        "import re, sys; from facelabel.cli import main\n"
        "try: main(sys.argv[1:])\n"
        "except SystemExit: pass\n"
        "peak = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(int(peak) // 1024, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    return int(result.stderr.strip().split()[-1]), result.stdout


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def facelabel(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "facelabel", *args], env={**os.environ, **env}, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"facelabel {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def distributed(
    folder: Path,
    env: dict,
    *,
    aligned: bool = True,
    processes: int | None = None,
    batch_size: int | None = None,
) -> tuple[float, int]:
    """``facelabel enqueue FOLDER --wait`` (``--aligned``: aligned faces) through one Celery
    worker (``processes`` children, else its default) to a fresh PostgreSQL database: (images/s
    from job creation to completion, by the database's timestamps, worker warm; peak MiB of the
    worker's process tree, shared pages counted once: the sum of its processes' PSS)."""
    import redis

    from db.engine import open_database
    from db.models import Job
    from tests.helpers import fresh_pg_database

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        "FACELABEL_DB_URL": fresh_pg_database("facelabel_bench_distributed"),
        "FACELABEL_BROKER_URL": REDIS_URL,
        **env,
    }
    options = (["--aligned"] if aligned else []) + (["--batch-size", str(batch_size)] if batch_size else [])
    command = [sys.executable, "-m", "facelabel", "worker", "--loglevel", "WARNING"]
    worker = subprocess.Popen(
        command + (["--concurrency", str(processes)] if processes else []),
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with tempfile.TemporaryDirectory() as warm:
            aligned_folder(Path(warm), 8)
            facelabel(env, "enqueue", warm, "--aligned", "--wait")
        with _PeakMemory(worker.pid) as memory:
            result = facelabel(env, "enqueue", str(folder), "--wait", *options)
        with open_database(env["FACELABEL_DB_URL"])() as session:
            job = session.get(Job, int(result.stdout.split()[0]))
            seconds = (job.finished_at - job.created_at).total_seconds()
        return sum(1 for _ in folder.iterdir()) / seconds, memory.peak_mib
    finally:
        worker.terminate()
        worker.wait(timeout=60)


class _PeakMemory:
    """Samples the summed PSS of a process and its descendants every 50 ms while in the block."""

    def __init__(self, pid: int):
        self.pid, self.peak_mib, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mib = max(self.peak_mib, sum(_pss_kib(pid) for pid in _tree(self.pid)) // 1024)


def _tree(pid: int) -> list[int]:
    pids, found = [pid], []
    while pids:
        current = pids.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                pids += [int(p) for p in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except OSError:  # gone meanwhile
            pass
    return found


def _pss_kib(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
