"""MTCNN's detection time per image by batch size (FACELABEL_DETECT_BATCH) on images of one
size, CelebA's aligned 178×218 JPEGs; YuNet and BlazeFace take one photo per call.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample python bench/detect_batch.py [--count 96]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facelabel.settings import read_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=96, help="Images timed per batch size.")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32], help="Batch sizes.")
    args = parser.parse_args()
    from facelabel.vision.detector import warm_up
    from facelabel.vision.faces import NoFace, decode_for_faces, faces_in

    settings = read_settings().with_(detector="mtcnn")
    folder = Path(os.environ["FACELABEL_CELEBA_DIR"]) / "aligned" / "images"
    paths = sorted(folder.glob("*.jpg"))[: args.count]
    photos = [decode_for_faces(p.read_bytes(), size=160, aligned=False, settings=settings) for p in paths]
    warm_up("mtcnn")
    for batch in args.batches:
        batched = settings.with_(detect_batch=batch)
        faces_in(photos[:batch], size=160, aligned=False, settings=batched)  # trace this batch shape
        started = time.perf_counter()
        results = faces_in(photos, size=160, aligned=False, settings=batched)
        seconds = time.perf_counter() - started
        found = sum(not isinstance(r, NoFace) for r in results)
        print(f"batch {batch}: {seconds / len(photos):.3f} s per image, a face in {found} of {len(photos)}")


if __name__ == "__main__":
    main()
