"""CPU time per aligned image outside the model, stage by stage, one image at a time on one
thread (what each image costs the cores the classifier also needs): read through the confined
reader, sha256, decode, crop to the model's input. Best of 3 passes.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample python bench/prepare_cost.py [--images 500]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import aligned_folder  # noqa: E402
from facelabel.confined import read_confined  # noqa: E402
from facelabel.settings import read_settings  # noqa: E402
from facelabel.vision.faces import decode_for_faces, faces_in  # noqa: E402


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
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    settings = read_settings()
    with tempfile.TemporaryDirectory() as scratch:
        folder = aligned_folder(Path(scratch) / "aligned", args.images)
        paths = sorted(str(p) for p in folder.iterdir())
        read, data = best_ms(lambda p: read_confined(p, [str(folder)], max_bytes=10**8), paths)
        digest, _ = best_ms(lambda d: hashlib.sha256(d).hexdigest(), data)
        decode, photos = best_ms(
            lambda d: decode_for_faces(d, size=args.size, aligned=True, settings=settings), data
        )
        crop, _ = best_ms(lambda p: faces_in([p], size=args.size, aligned=True, settings=settings), photos)
    stages = {"read": read, "sha256": digest, "decode": decode, "crop": crop}
    print(
        f"{args.images} aligned images, ms per image: " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
    )
    print(f"total {sum(stages.values()):.3f} ms")


if __name__ == "__main__":
    main()
