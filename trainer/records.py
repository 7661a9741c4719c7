"""Selection JSON + image folder → sharded TFRecords of model-ready face crops.

Each record holds the crop exactly as a worker would feed it to the model (``find_faces``:
the whole aligned image, or the largest detected face framed as an aligned crop; stored as
lossless PNG), its labels (0/1 in ``ATTRIBUTES`` order) and the image name. A manifest
beside the shards gives counts and positives per split.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import io
import json
import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from PIL import Image

from facelabel.artifact import ATTRIBUTES
from facelabel.errors import FacelabelError
from facelabel.settings import Settings, read_settings
from facelabel.vision.faces import NoFace, decode_for_faces, faces_in
from facelabel.vision.imaging import Decoded, ImageError
from trainer.annotations import AnnotationError, Example, load_selection

SPLITS = ("train", "val", "test")
SHARD_SIZE = 1000
MANIFEST = "manifest.json"


class RecordsError(FacelabelError):
    """Record shards that are missing or do not fit together; ``str()`` says why."""


def face_pngs(
    paths: list[Path], *, size: int, framing: str, settings: Settings, pool: ThreadPoolExecutor
) -> Iterator[bytes | str]:
    """For each path, the crop a worker would compute (face 0 when detecting) as PNG bytes, or
    the reason it has none. Threads decode; detection runs in the worker's batches."""
    aligned = framing == "aligned"

    def decode(path: Path) -> Decoded | str:
        try:
            return decode_for_faces(path.read_bytes(), size=size, aligned=aligned, settings=settings)
        except (OSError, ImageError) as exc:
            return f"{path.name}: {exc}"

    decoded = list(pool.map(decode, paths))
    photos = [d for d in decoded if isinstance(d, Decoded)]
    found = iter(faces_in(photos, size=size, aligned=aligned, settings=settings))
    for path, photo in zip(paths, decoded):
        if isinstance(photo, str):
            yield photo
            continue
        result = next(found)
        if isinstance(result, NoFace):
            yield f"{path.name}: {result}"
            continue
        buffer = io.BytesIO()
        Image.fromarray(result.crops[0]).save(buffer, "PNG", compress_level=1)
        yield buffer.getvalue()


def read_identities(path: str | Path) -> dict[str, str]:
    """CelebA's ``identity_CelebA.txt``: image name → person id."""
    identities = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 2:
            raise AnnotationError(f"{path}, line {number}: expected 'IMAGE PERSON', got {line!r}")
        identities[fields[0]] = fields[1]
    return identities


def assign_splits(
    examples: list[Example],
    *,
    ratios: tuple[int, int, int] | None,
    seed: int,
    stable: bool = False,
    identities: dict[str, str] | None = None,
) -> dict[str, list[Example]]:
    """Official partitions (identity-disjoint) when ``ratios`` is None, else a cut by
    ``ratios``: by person with ``identities`` (each person's images in one split, people in a
    seeded order), else by image (the same person can land in two splits), a seeded shuffle
    or with ``stable`` a hash of each image name, so an image keeps its split as data grows."""
    if ratios is not None and identities is not None:
        return _by_person(examples, ratios, seed, identities)
    if ratios is None:
        if any(e.partition is None for e in examples):
            raise AnnotationError("--official-partition needs a selection made with --partition")
        return {s: [e for e in examples if e.partition == s] for s in SPLITS}
    total = sum(ratios)
    if stable:
        splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
        for example in examples:
            bucket = int(hashlib.sha256(example.image.encode()).hexdigest()[:8], 16) % total
            name = "train" if bucket < ratios[0] else "val" if bucket < ratios[0] + ratios[1] else "test"
            splits[name].append(example)
        return splits
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    cut_train = round(len(shuffled) * ratios[0] / total)
    cut_val = cut_train + round(len(shuffled) * ratios[1] / total)
    return {"train": shuffled[:cut_train], "val": shuffled[cut_train:cut_val], "test": shuffled[cut_val:]}


def person_folds(
    examples: list[Example], *, folds: int, test_percent: int, seed: int, identities: dict[str, str]
) -> dict[str, list[Example]]:
    """``fold0`` … ``fold{folds-1}`` and ``test``, by person: a seeded hash of the person id puts
    ``test_percent`` % of people in ``test`` and spreads the rest over the folds. The hash sees
    only the person, so every folder built with the same seed puts a person in the same split."""
    missing = [e.image for e in examples if e.image not in identities]
    if missing:
        raise AnnotationError(f"{len(missing)} images have no person in the identity file, e.g. {missing[0]}")
    splits: dict[str, list[Example]] = {f"fold{i}": [] for i in range(folds)} | {"test": []}
    for example in examples:
        digest = hashlib.sha256(f"{seed}:{identities[example.image]}".encode()).hexdigest()
        bucket = int(digest[:12], 16)
        name = "test" if bucket % 100 < test_percent else f"fold{(bucket // 100) % folds}"
        splits[name].append(example)
    return splits


def trained_images(
    train: dict[str, dict], folder: str, examples: list[Example], identities: dict[str, str]
) -> set[str]:
    """The images of ``folder`` (its name) that a model trained on: its person folds among the
    model's training records (``model.json``'s ``training.data.train``), found again by the
    same seeded person hash that built them."""
    seen: set[str] = set()
    for spec, manifest in train.items():
        if Path(spec).parent.name != folder:
            continue
        split = manifest.get("split")
        if not isinstance(split, dict) or "folds" not in split:
            raise RecordsError(f"{spec}: not split into person folds, so its images cannot be told apart")
        splits = person_folds(
            examples,
            folds=split["folds"],
            test_percent=split["test_percent"],
            seed=split["seed"],
            identities=identities,
        )
        seen |= {e.image for e in splits[Path(spec).name]}
    return seen


def _split_description(ratios, seed: int, stable: bool, identities, folds: dict | None = None) -> str | dict:
    if folds is not None:
        return {"by": "person", "seed": seed, **folds}
    if ratios is None:
        return "official"
    if identities is not None:
        return {"ratios": list(ratios), "seed": seed, "by": "person"}
    return {"ratios": list(ratios), "by": "name hash"} if stable else {"ratios": list(ratios), "seed": seed}


def _by_person(
    examples: list[Example], ratios: tuple[int, int, int], seed: int, identities: dict[str, str]
) -> dict[str, list[Example]]:
    missing = [e.image for e in examples if e.image not in identities]
    if missing:
        raise AnnotationError(f"{len(missing)} images have no person in the identity file, e.g. {missing[0]}")
    people: dict[str, list[Example]] = {}
    for example in examples:
        people.setdefault(identities[example.image], []).append(example)
    order = sorted(people)
    random.Random(seed).shuffle(order)
    total = sum(ratios)
    cut_train = len(examples) * ratios[0] / total
    cut_val = cut_train + len(examples) * ratios[1] / total
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    placed = 0
    for person in order:
        name = "train" if placed < cut_train else "val" if placed < cut_val else "test"
        splits[name].extend(people[person])
        placed += len(people[person])
    return splits


def build_records(
    selection: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    ratios: tuple[int, int, int] | None,
    seed: int = 0,
    size: int = 160,
    threads: int = 4,
    framing: str = "aligned",
    stable: bool = False,
    identities: dict[str, str] | None = None,
    folds: dict | None = None,
) -> dict:
    """Write ``out/{split}-NNNNN-of-NNNNN.tfrecord`` shards and ``out/manifest.json``; with
    ``folds`` ({"folds": k, "test_percent": p}) the splits are person folds (``person_folds``)."""
    import tensorflow as tf

    images, out = Path(images), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    examples = load_selection(selection)
    if folds is not None:
        splits = person_folds(examples, seed=seed, identities=identities, **folds)
    else:
        splits = assign_splits(examples, ratios=ratios, seed=seed, stable=stable, identities=identities)
    manifest = {
        "size": size,
        "framing": framing,
        "attributes": list(ATTRIBUTES),
        "selection_sha256": hashlib.sha256(Path(selection).read_bytes()).hexdigest(),
        "split": _split_description(ratios, seed, stable, identities, folds),
        "splits": {},
    }

    settings = read_settings()
    with ThreadPoolExecutor(threads) as pool:
        for name, members in splits.items():
            crops = functools.partial(face_pngs, size=size, framing=framing, settings=settings, pool=pool)
            manifest["splits"][name] = _write_split(tf, out, name, members, images, crops)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_split(tf, out: Path, name: str, members: list[Example], images: Path, crops) -> dict:
    """Shards of one split; returns its manifest entry (counts, positives, skipped images)."""
    shards = max(1, math.ceil(len(members) / SHARD_SIZE)) if members else 0
    written, problems = 0, []
    positives = dict.fromkeys(ATTRIBUTES, 0)
    for shard in range(shards):
        part = members[shard * SHARD_SIZE : (shard + 1) * SHARD_SIZE]
        with tf.io.TFRecordWriter(str(out / f"{name}-{shard:05d}-of-{shards:05d}.tfrecord")) as writer:
            for example, png in zip(part, crops([images / e.image for e in part])):
                if isinstance(png, str):
                    problems.append(png)
                    continue
                writer.write(serialize(tf, example, png))
                written += 1
                for attribute, label in zip(ATTRIBUTES, example.labels):
                    positives[attribute] += label
    return {
        "images": written,
        "positives": positives,
        "shards": shards,
        "skipped": len(problems),
        "skipped_examples": problems[:20],
    }


def serialize(tf, example: Example, png: bytes) -> bytes:
    """One record: the crop as PNG, the labels in ``ATTRIBUTES`` order, the image name."""
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
        raise RecordsError(f"no TFRecord shards match {pattern}")
    return files


def read_manifest(files: list[str]) -> dict:
    path = Path(files[0]).parent / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise RecordsError(
            f"{path} is missing or unreadable: build records with 'facelabel data tfrecords'"
        ) from None
