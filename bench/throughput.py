"""Labelling throughput on aligned faces, one run, same machine and model, per classifier
runtime (FACELABEL_RUNTIME: keras, litert):

(a) raw batched forward pass on pre-decoded tensors (the ceiling)
(b) the seed's way: one ``model.predict`` per image (Keras)
(c) embedded ``facelabel label --aligned``
(d) ``facelabel enqueue --wait`` → one Celery worker, as many processes as it starts by
    default (or ``--worker-processes N``) → PostgreSQL

Usage: [FACELABEL_MODEL=DIR] python bench/throughput.py [--images 2000] [--batch-size 32]
           [--runtime keras --runtime litert] [--worker-processes N]
           [--json MODEL/report/throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import Timer, aligned_folder, distributed, facelabel  # noqa: E402
from facelabel.artifact import load_artifact  # noqa: E402
from facelabel.settings import BUNDLED_MODEL  # noqa: E402
from facelabel.vision.imaging import crop_face, decode_image, whole_image  # noqa: E402


def decoded_batch(folder: Path, size: int) -> np.ndarray:
    crops = []
    for path in sorted(folder.iterdir()):
        decoded = decode_image(path.read_bytes(), max_pixels=10**8, draft_size=size)
        crops.append(crop_face(decoded, whole_image(decoded), size))
    return np.stack(crops)


def raw_forward(classifier, pixels: np.ndarray, batch_size: int) -> float:
    classifier.predict(pixels[:batch_size])
    with Timer() as timer:
        for start in range(0, len(pixels), batch_size):
            classifier.predict(pixels[start : start + batch_size])
    return len(pixels) / timer.seconds


def seed_way(classifier, pixels: np.ndarray, count: int) -> float:
    model = classifier.model
    model.predict(pixels[:1].astype("float32"), verbose=0)
    with Timer() as timer:
        for image in pixels[:count]:
            model.predict(image[None].astype("float32"), verbose=0)
    return count / timer.seconds


def embedded(folder: Path, scratch: Path, batch_size: int, runtime: str) -> tuple[float, float]:
    """(rate the CLI reports, excluding model load) and (images / whole command wall time)."""
    db = f"sqlite:///{scratch / f'embedded-{runtime}.db'}"
    env = {"FACELABEL_RUNTIME": runtime}
    with Timer() as timer:
        result = facelabel(
            env, "--db", db, "label", str(folder), "--aligned", "--batch-size", str(batch_size)
        )
    reported = float(re.search(r"\(([\d,.]+) images/s\)", result.stdout).group(1).replace(",", ""))
    return reported, count_images(folder) / timer.seconds


def count_images(folder: Path) -> int:
    return sum(1 for _ in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed-images", type=int, default=200)
    parser.add_argument("--runtime", action="append", choices=("keras", "litert"), help="Default: both.")
    parser.add_argument("--worker-processes", type=int, help="(d): the worker's --concurrency.")
    parser.add_argument(
        "--json", help="Also write the figures here (the model card reads report/throughput.json)."
    )
    args = parser.parse_args()

    from facelabel.cli.labeling import default_processes
    from facelabel.settings import read_settings
    from facelabel.vision.classifier import Classifier, get_classifier

    model = os.environ.get("FACELABEL_MODEL") or str(BUNDLED_MODEL)
    artifact = load_artifact(model)
    runtimes = args.runtime or ["keras", "litert"]
    processes = args.worker_processes
    cpus = len(os.sched_getaffinity(0))
    defaults = {r: default_processes(read_settings().with_(runtime=r), "label", cpus)[0] for r in runtimes}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="facelabel-bench-") as scratch:
        scratch = Path(scratch)
        folder = aligned_folder(scratch / "aligned", args.images)
        pixels = decoded_batch(folder, artifact.input_size)
        seed = seed_way(Classifier(artifact), pixels, args.seed_images)
        for runtime in runtimes:
            classifier = get_classifier(model, read_settings().with_(runtime=runtime))
            raw = raw_forward(classifier, pixels, args.batch_size)
            reported, wall = embedded(folder, scratch, args.batch_size, runtime)
            dist, _ = distributed(
                folder, {"FACELABEL_RUNTIME": runtime}, processes=processes, batch_size=args.batch_size
            )
            rows[runtime] = (raw, reported, wall, dist)

    print(
        f"model {artifact.name}, {args.images} aligned images, batch {args.batch_size}, {os.cpu_count()} CPUs"
    )
    print(f"(d) worker processes: {processes or 'the default: ' + str(defaults)}")
    print(f"(b) one Keras predict per image (the seed's way): {seed:.1f} images/s")
    print(
        "| runtime | (a) raw forward | (c) embedded label | c/a | whole command "
        "| (d) enqueue→worker→SQL | d/a |"
    )
    print("|---|---|---|---|---|---|---|")
    for runtime, (raw, reported, wall, dist) in rows.items():
        print(
            f"| {runtime} | {raw:.1f} | {reported:.1f} | {reported / raw:.2f} | {wall:.1f} "
            f"| {dist:.1f} | {dist / raw:.2f} |"
        )
    if {"keras", "litert"} <= rows.keys():
        print(f"embedded label, litert / keras: {rows['litert'][1] / rows['keras'][1]:.2f} ×")
    if args.json:
        figures = {
            "model": artifact.name,
            "model_mb": round(artifact.weights_path.stat().st_size / 1e6, 1),
            "images": args.images,
            "batch_size": args.batch_size,
            "cpus": os.cpu_count(),
            "seed_way": round(seed, 1),
            "worker_processes": processes or defaults,
            "runtimes": {
                runtime: dict(zip(("raw", "label", "label_wall", "distributed"), (round(v, 1) for v in row)))
                for runtime, row in rows.items()
            },
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
