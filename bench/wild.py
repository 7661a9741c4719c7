"""In-the-wild photos (CelebA ``wild/``, one labelled main face each, leaving out photos whose
aligned version is in the training folders and those the model itself trained on), per face
detector and framing: detection time per photo, how often a face is found, the attributes' F1
on face 0 (the largest) at the model's thresholds, each stage's share of the time; then
end-to-end ``facelabel label`` on the folder (photos/s, peak memory) and the peak memory of
labelling 24-megapixel photos.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample python bench/wild.py
           [--detector yunet --detector mtcnn ...] [--framing box|landmarks|both] [--limit N]
           [--json facelabel/models/default/report/wild.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import measured_run, peak_rss_mib  # noqa: E402
from facelabel.artifact import ATTRIBUTES, load_artifact  # noqa: E402
from facelabel.settings import BUNDLED_MODEL, read_settings  # noqa: E402
from facelabel.vision.detectors import NAMES  # noqa: E402
from trainer.annotations import read_attributes  # noqa: E402
from trainer.evaluate import evaluate_predictions, summary_markdown  # noqa: E402
from trainer.model_card import wild_table  # noqa: E402
from trainer.records import read_identities, trained_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--detector", action="append", choices=NAMES, help="Repeat for several (default: all)."
    )
    parser.add_argument("--framing", choices=("box", "landmarks", "both"), default="both")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N photos.")
    parser.add_argument("--big", type=int, default=6, help="24-megapixel photos in the memory run.")
    parser.add_argument("--json", help="Also write the figures here (the model card reads report/wild.json).")
    args = parser.parse_args()
    celeba = Path(os.environ["FACELABEL_CELEBA_DIR"])
    model = os.environ.get("FACELABEL_MODEL") or str(BUNDLED_MODEL)
    examples = read_attributes(celeba / "wild" / "list_attr_celeba.txt")
    trained_on = {
        p.name for folder in ("aligned", "aligned_89x109") for p in (celeba / folder / "images").glob("*.jpg")
    }
    trained_on |= trained_images(
        load_artifact(model).meta["training"]["data"].get("train", {}),
        "wild",
        examples,
        read_identities(celeba / "wild" / "identity_CelebA.txt"),
    )
    examples = [e for e in examples if e.image not in trained_on][: args.limit]
    framings = ("box", "landmarks") if args.framing == "both" else (args.framing,)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "wild"
        folder.mkdir()
        for example in examples:
            shutil.copyfile(celeba / "wild" / "images" / example.image, folder / example.image)
        big = big_photos(folder / examples[0].image, Path(scratch) / "big", args.big)
        for detector in args.detector or NAMES:
            for framing in framings:
                row = measure(folder, examples, model, detector, framing)
                row.update(label_run(folder, detector, framing, Path(scratch) / f"{detector}-{framing}.db"))
                if framing == framings[0]:
                    row["peak_rss_mib_24mp"] = peak_rss_mib(
                        ["--db", f"sqlite:///{scratch}/big-{detector}.db", "label", str(big)],
                        {"FACELABEL_DETECTOR": detector},
                    )
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "face0"}), flush=True)
    print_tables(rows, len(examples), load_artifact(model).name)
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": len(examples), "runs": rows}, indent=2) + "\n")


def measure(folder: Path, examples, model: str, detector: str, framing: str) -> dict:
    """Decode (threads, ahead), detection + crop, and classification of face 0, each timed."""
    from facelabel.vision.classifier import get_classifier, runtime_for
    from facelabel.vision.detector import warm_up
    from facelabel.vision.faces import NoFace, decode_for_faces, faces_in

    settings = read_settings().with_(detector=detector, face_framing=framing)
    artifact = load_artifact(model)
    classifier = get_classifier(model, settings)
    warm_up(detector)
    size = artifact.input_size

    def decode(example):
        started = time.perf_counter()
        photo = decode_for_faces(
            (folder / example.image).read_bytes(), size=size, aligned=False, settings=settings
        )
        return photo, time.perf_counter() - started

    found, crops, labels, decode_seconds, detect_seconds = 0, [], [], 0.0, 0.0
    started = time.perf_counter()
    with ThreadPoolExecutor(settings.decode_threads) as pool:
        for example, (photo, seconds) in zip(examples, pool.map(decode, examples)):
            decode_seconds += seconds
            detect_started = time.perf_counter()
            (result,) = faces_in([photo], size=size, aligned=False, settings=settings)
            detect_seconds += time.perf_counter() - detect_started
            if not isinstance(result, NoFace):
                found += 1
                crops.append(result.crops[0])
                labels.append(example.labels)
    find_seconds = time.perf_counter() - started
    started = time.perf_counter()
    probabilities = np.concatenate(
        [classifier.predict(np.stack(crops[i : i + 64])) for i in range(0, len(crops), 64)]
    )
    classify_seconds = time.perf_counter() - started
    report = evaluate_predictions(
        probabilities, np.array(labels), [artifact.thresholds[a] for a in ATTRIBUTES]
    )
    total = find_seconds + classify_seconds
    return {
        "detector": detector,
        "framing": framing,
        "runtime": runtime_for(settings.runtime),
        "photos": len(examples),
        "face_found": found,
        "detect_ms_per_photo": round(1000 * detect_seconds / len(examples), 1),
        "decode_ms_per_photo": round(1000 * decode_seconds / len(examples), 1),  # in threads, overlapped
        "share": {
            "waiting_for_decode": round((find_seconds - detect_seconds) / total, 3),
            "detect_and_crop": round(detect_seconds / total, 3),
            "classify": round(classify_seconds / total, 3),
        },
        "macro_f1": report["macro_f1"],
        "macro_f1_at_0.5": report["macro_f1_at_0.5"],
        "face0": report,
    }


def label_run(folder: Path, detector: str, framing: str, database: Path) -> dict:
    """``facelabel label`` on the folder in a process of its own: its photos/s, peak memory."""
    env = {"FACELABEL_DETECTOR": detector, "FACELABEL_FACE_FRAMING": framing}
    peak, out = measured_run(["--db", f"sqlite:///{database}", "label", str(folder)], env)
    rate = float(re.search(r"\(([\d.]+) images/s\)", out).group(1))
    return {"label_photos_per_second": rate, "label_peak_rss_mib": peak}


def big_photos(source: Path, folder: Path, count: int) -> Path:
    """``count`` different 6000×4000 JPEGs made from one wild photo."""
    from PIL import Image

    folder.mkdir()
    with Image.open(source) as image:
        big = image.convert("RGB").resize((6000, 4000))
    for index in range(count):
        big.rotate(index * 3).save(folder / f"24mp_{index}.jpg", quality=90)
    return folder


def print_tables(rows: list[dict], photos: int, model: str) -> None:
    print(f"\nmodel {model}; {photos} wild photos; runtime {rows[0]['runtime']}")
    print("\n".join(wild_table(rows)))
    print("\nshare of the time (decode runs in threads ahead; this is the main thread waiting for it):")
    for r in rows:
        print(
            f"{r['detector']}/{r['framing']}: "
            + ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["share"].items())
        )
    best = max(rows, key=lambda r: r["macro_f1"])
    print(f"\nface 0 with {best['detector']}/{best['framing']}:")
    print(summary_markdown(best["face0"]))


if __name__ == "__main__":
    main()
