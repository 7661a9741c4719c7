"""CPU time per aligned image outside the model, stage by stage, one image at a time on one
thread (what each image costs the cores the classifier also needs): read through the confined
reader, sha256, decode, crop to the model's input. Best of 3 passes. Beside them, the model's
own CPU per face (LiteRT on one thread) and so the most of LiteRT's raw forward (every core)
that labelling could reach here if those stages overlapped it perfectly and nothing else (the
database, Python around the batches) cost anything: the ceiling on bench/throughput.py's c/a.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample [FACELABEL_MODEL=DIR] python bench/prepare_cost.py
           [--images 500]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import aligned_folder  # noqa: E402
from bench.throughput import raw_forward  # noqa: E402
from facelabel.artifact import load_artifact  # noqa: E402
from facelabel.confined import read_confined  # noqa: E402
from facelabel.settings import BUNDLED_MODEL, read_settings  # noqa: E402
from facelabel.vision.faces import decode_for_faces, faces_in  # noqa: E402
from facelabel.vision.lite_classifier import LiteClassifier  # noqa: E402


def best_ms(stage, items) -> tuple[float, list]:
    best, out = float("inf"), []
    for _ in range(3):
        started = time.perf_counter()
        out = [stage(item) for item in items]
        best = min(best, (time.perf_counter() - started) / len(items) * 1e3)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    settings = read_settings()
    artifact = load_artifact(os.environ.get("FACELABEL_MODEL") or str(BUNDLED_MODEL))
    size = artifact.input_size
    with tempfile.TemporaryDirectory() as scratch:
        folder = aligned_folder(Path(scratch) / "aligned", args.images)
        paths = sorted(str(p) for p in folder.iterdir())
        read, data = best_ms(lambda p: read_confined(p, [str(folder)], max_bytes=10**8), paths)
        digest, _ = best_ms(lambda d: hashlib.sha256(d).hexdigest(), data)
        decode, photos = best_ms(
            lambda d: decode_for_faces(d, size=size, aligned=True, settings=settings), data
        )
        crop, found = best_ms(lambda p: faces_in([p], size=size, aligned=True, settings=settings), photos)
    stages = {"read": read, "sha256": digest, "decode": decode, "crop": crop}
    print(
        f"{args.images} aligned images, ms per image: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
    )
    outside = sum(stages.values())
    print(f"total {outside:.3f} ms")
    pixels = np.stack([faces.crops[0] for (faces,) in found])
    cores = len(os.sched_getaffinity(0))
    rates = {
        threads: raw_forward(
            LiteClassifier(artifact, cache_dir=settings.cache_dir, threads=threads), pixels, args.batch_size
        )
        for threads in sorted({1, cores})
    }
    model_ms = 1e3 / rates[1]
    ceiling = cores * 1e3 / (model_ms + outside)
    print(
        f"LiteRT raw forward, batch {args.batch_size}: {model_ms:.3f} ms per face on one thread; "
        f"{rates[cores]:.1f} faces/s on {cores} threads"
    )
    print(
        f"ceiling: {cores} cores / ({model_ms:.3f} + {outside:.3f}) ms = {ceiling:.1f} faces/s, "
        f"{ceiling / rates[cores]:.2f} x the raw forward"
    )


if __name__ == "__main__":
    main()
