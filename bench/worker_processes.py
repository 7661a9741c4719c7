"""One Celery worker by its number of processes: photos/s of ``enqueue --wait`` → worker →
PostgreSQL on the in-the-wild photos (detection on) and on aligned faces, and the peak memory
of the worker's process tree labelling 24-megapixel photos. The default runtime and detector.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample python bench/worker_processes.py
           [--processes 1 --processes 2 ...] [--images 2000] [--big 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import aligned_folder, distributed  # noqa: E402
from bench.wild import big_photos  # noqa: E402
from facelabel.cli.labeling import default_processes  # noqa: E402
from facelabel.settings import read_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--processes", type=int, action="append", help="Repeat (default: 1); the worker's default runs too."
    )
    parser.add_argument("--images", type=int, default=2000, help="Aligned faces.")
    parser.add_argument("--big", type=int, default=6, help="24-megapixel photos in the memory run.")
    args = parser.parse_args()
    celeba = os.environ.get("FACELABEL_CELEBA_DIR")
    if not celeba:
        sys.exit("set FACELABEL_CELEBA_DIR to the CelebA sample (its wild/ photos are the folder)")
    wild = Path(celeba) / "wild" / "images"
    settings, cpus = read_settings(), len(os.sched_getaffinity(0))
    print(f"{os.cpu_count()} CPUs; {sum(1 for _ in wild.iterdir())} wild photos, {args.images} aligned faces")
    print("| worker processes | wild photos/s | aligned faces/s | peak MiB, 24 MP photos |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="facelabel-bench-") as scratch:
        scratch = Path(scratch)
        aligned = aligned_folder(scratch / "aligned", args.images)
        big = big_photos(next(wild.iterdir()), scratch / "big", args.big)
        for processes in (args.processes or [1]) + [None]:
            photos, _ = distributed(wild, {}, aligned=False, processes=processes)
            faces, _ = distributed(aligned, {}, processes=processes)
            # chunks of 2 photos, so that every process holds big photos at once
            _, peak = distributed(big, {"FACELABEL_CHUNK_SIZE": "2"}, aligned=False, processes=processes)
            name = processes or f"default: {default_processes(settings, 'label', cpus)[0]}"
            print(f"| {name} | {photos:.1f} | {faces:.1f} | {peak} |", flush=True)


if __name__ == "__main__":
    main()
