"""In-the-wild photos (CelebA ``wild/``, one labelled main face each, leaving out photos whose
aligned version is in the training folders): how often a face is found, the attributes' F1
on face 0 (the largest) with the model's thresholds, speed with detection, and peak memory
on a 24-megapixel photo.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample python bench/wild.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import peak_rss_mib  # noqa: E402
from facelabel.artifact import ATTRIBUTES, load_artifact  # noqa: E402
from facelabel.settings import BUNDLED_MODEL, read_settings  # noqa: E402
from facelabel.vision.imaging import decode_image  # noqa: E402
from trainer.annotations import read_attributes  # noqa: E402
from trainer.evaluate import evaluate_predictions, summary_markdown  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="Only the first N photos.")
    parser.add_argument("--detect-batch", type=int, help="Photos per MTCNN call (FACELABEL_DETECT_BATCH).")
    parser.add_argument(
        "--max-side", type=int, help="Detection copy's longer side (FACELABEL_DETECT_MAX_SIDE)."
    )
    parser.add_argument("--json", help="Also write the figures here (the model card reads report/wild.json).")
    args = parser.parse_args()
    from facelabel.vision.classifier import Classifier
    from facelabel.vision.detector import warm_up
    from facelabel.vision.faces import NoFace, decode_for_faces, faces_in

    celeba = Path(os.environ["FACELABEL_CELEBA_DIR"])
    wild = celeba / "wild"
    trained_on = {
        p.name for folder in ("aligned", "aligned_89x109") for p in (celeba / folder / "images").glob("*.jpg")
    }
    examples = [e for e in read_attributes(wild / "list_attr_celeba.txt") if e.image not in trained_on][
        : args.limit
    ]
    artifact = load_artifact(os.environ.get("FACELABEL_MODEL") or BUNDLED_MODEL)
    classifier = Classifier(artifact)
    settings = read_settings()
    settings = settings.with_(
        detect_batch=args.detect_batch or settings.detect_batch,
        detect_max_side=args.max_side or settings.detect_max_side,
    )
    size = artifact.input_size
    warm_up()

    def decode(example):
        data = (wild / "images" / example.image).read_bytes()
        return decode_for_faces(data, size=size, aligned=False, settings=settings)

    found, crops, labels, detect_seconds = 0, [], [], 0.0
    started = time.perf_counter()
    with ThreadPoolExecutor(settings.decode_threads) as pool:
        photos = pool.map(decode, examples)
        for start in range(0, len(examples), settings.detect_batch):
            group = examples[start : start + settings.detect_batch]
            batch = [next(photos) for _ in group]
            detect_started = time.perf_counter()
            results = faces_in(batch, size=size, aligned=False, settings=settings)
            detect_seconds += time.perf_counter() - detect_started
            for example, result in zip(group, results):
                if not isinstance(result, NoFace):
                    found += 1
                    crops.append(result.crops[0])
                    labels.append(example.labels)
    find_seconds = time.perf_counter() - started
    started = time.perf_counter()
    probabilities = np.concatenate(
        [classifier.predict(np.stack(crops[i : i + 32])) for i in range(0, len(crops), 32)]
    )
    classify_seconds = time.perf_counter() - started
    report = evaluate_predictions(
        probabilities, np.array(labels), [artifact.thresholds[a] for a in ATTRIBUTES]
    )

    with tempfile.TemporaryDirectory() as scratch:
        big = Path(scratch) / "24mp.jpg"
        face = decode_image((wild / "images" / examples[0].image).read_bytes(), max_pixels=10**8).image
        face.resize((6000, 4000)).save(big, quality=90)
        small = Path(scratch) / "small.jpg"
        face.save(small, quality=90)
        rss_big, rss_small = peak_rss_mib(["predict", str(big)]), peak_rss_mib(["predict", str(small)])
        big_seconds = {}
        for side in (settings.detect_max_side, settings.detect_max_side // 2):  # what downscaling buys
            at_side = settings.with_(detect_max_side=side)
            started = time.perf_counter()
            faces_in([decode_for_faces(big.read_bytes(), size=size, aligned=False, settings=at_side)],
                     size=size, aligned=False, settings=at_side)  # fmt: skip
            big_seconds[side] = round(time.perf_counter() - started, 2)

    total = find_seconds + classify_seconds
    print(
        f"model {artifact.name}; {len(examples)} wild photos; detection batch {settings.detect_batch}, "
        f"max side {settings.detect_max_side}, {settings.decode_threads} decode threads"
    )
    print(f"face found in {found} ({100 * found / len(examples):.1f} %)")
    print(
        "a 6000x4000 photo, decode + detect: "
        + ", ".join(f"{seconds} s at max side {side}" for side, seconds in big_seconds.items())
    )
    print(
        f"decode (threads, overlapped) + detect + crop: {find_seconds:.1f} s "
        f"({len(examples) / find_seconds:.2f} photos/s), of which waiting on MTCNN {detect_seconds:.1f} s; "
        f"classification of face 0: {classify_seconds:.2f} s; "
        f"detection share {100 * detect_seconds / total:.0f} %"
    )
    print(
        f"peak RSS of predict: {rss_big} MiB on a 6000x4000 photo, {rss_small} MiB on a "
        f"{face.width}x{face.height} one"
    )
    print(f"face 0 against the photo's labels ({found} photos with a face):")
    print(summary_markdown(report))
    if args.json:
        figures = {
            "photos": len(examples),
            "face_found": found,
            "detect_batch": settings.detect_batch,
            "detect_max_side": settings.detect_max_side,
            "photos_per_second": round(len(examples) / find_seconds, 2),
            "detection_share": round(detect_seconds / total, 3),
            "peak_rss_mib": {"6000x4000": rss_big, f"{face.width}x{face.height}": rss_small},
            "seconds_6000x4000_by_max_side": big_seconds,
            "face0": report,
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
