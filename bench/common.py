"""Shared bench helpers: image folders, services, timing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
