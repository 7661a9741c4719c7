"""Selection JSON + image folder → sharded TFRecords of model-ready face crops.

Each record holds the crop exactly as a worker would feed it to the model (the shared
decode and crop of ``facelabel.imaging``, stored as lossless PNG), the four labels and the
image name. A manifest beside the shards gives counts and positives per split.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from facelabel.artifact import ATTRIBUTES
from facelabel.imaging import ImageError, crop_face, decode_image, whole_image
from trainer.annotations import AnnotationError, Example, load_selection

SPLITS = ("train", "val", "test")
SHARD_SIZE = 1000
MAX_PIXELS = 100_000_000
MANIFEST = "manifest.json"


def face_png(path: Path, size: int) -> bytes:
    """The aligned-face crop the worker would compute for ``path``, as PNG bytes."""
    decoded = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, draft_size=size)
    buffer = io.BytesIO()
    Image.fromarray(crop_face(decoded, whole_image(decoded), size)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def assign_splits(
    examples: list[Example], *, ratios: tuple[int, int, int] | None, seed: int
) -> dict[str, list[Example]]:
    """Official partitions (identity-disjoint) when ``ratios`` is None, else a seeded shuffle
    cut by ``ratios`` (image-level: the same person can land in two splits)."""
    if ratios is None:
        if any(e.partition is None for e in examples):
            raise AnnotationError("--official-partition needs a selection made with --partition")
        return {s: [e for e in examples if e.partition == s] for s in SPLITS}
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    total = sum(ratios)
    cut_train = round(len(shuffled) * ratios[0] / total)
    cut_val = cut_train + round(len(shuffled) * ratios[1] / total)
    return {"train": shuffled[:cut_train], "val": shuffled[cut_train:cut_val], "test": shuffled[cut_val:]}


def build_records(
    selection: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    ratios: tuple[int, int, int] | None,
    seed: int = 0,
    size: int = 160,
    threads: int = 4,
) -> dict:
    """Write ``out/{split}-NNNNN-of-NNNNN.tfrecord`` shards and ``out/manifest.json``."""
    import tensorflow as tf

    images, out = Path(images), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    examples = load_selection(selection)
    splits = assign_splits(examples, ratios=ratios, seed=seed)
    manifest = {
        "size": size,
        "framing": "aligned",
        "attributes": list(ATTRIBUTES),
        "selection_sha256": hashlib.sha256(Path(selection).read_bytes()).hexdigest(),
        "split": "official" if ratios is None else {"ratios": list(ratios), "seed": seed},
        "splits": {},
    }

    def encode(example: Example) -> tuple[Example, bytes | None, str | None]:
        try:
            return example, face_png(images / example.image, size), None
        except (OSError, ImageError) as exc:
            return example, None, f"{example.image}: {exc}"

    with ThreadPoolExecutor(threads) as pool:
        for name, members in splits.items():
            shards = max(1, math.ceil(len(members) / SHARD_SIZE)) if members else 0
            written, problems = 0, []
            positives = dict.fromkeys(ATTRIBUTES, 0)
            for shard in range(shards):
                path = out / f"{name}-{shard:05d}-of-{shards:05d}.tfrecord"
                with tf.io.TFRecordWriter(str(path)) as writer:
                    part = members[shard * SHARD_SIZE : (shard + 1) * SHARD_SIZE]
                    for example, png, problem in pool.map(encode, part):
                        if problem:
                            problems.append(problem)
                            continue
                        writer.write(_serialize(tf, example, png))
                        written += 1
                        for attribute, label in zip(ATTRIBUTES, example.labels):
                            positives[attribute] += label
            manifest["splits"][name] = {
                "images": written,
                "positives": positives,
                "shards": shards,
                "skipped": len(problems),
                "skipped_examples": problems[:20],
            }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _serialize(tf, example: Example, png: bytes) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(example.labels))),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example.image.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def record_files(spec: str | Path) -> list[str]:
    """Shard files for ``spec``: a file, a directory + split prefix (``records/train``), or a glob."""
    spec = Path(spec)
    if spec.is_file():
        return [str(spec)]
    pattern = str(spec) if any(c in str(spec) for c in "*?[") else f"{spec}-*.tfrecord"
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord shards match {pattern}")
    return files


def read_manifest(files: list[str]) -> dict:
    path = Path(files[0]).parent / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise FileNotFoundError(
            f"{path} is missing or unreadable: build records with 'facelabel data tfrecords'"
        ) from None
