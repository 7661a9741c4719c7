"""The gate's data: each training folder's records split so that the challenger and the
champion are scored on faces the challenger never trained on (by person where CelebA's
identity file says who is who, else by image), and the scores on them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from facelabel.artifact import ATTRIBUTES, load_artifact
from facelabel.estimate import BY_IMAGE, BY_PERSON
from facelabel.settings import Settings
from trainer.annotations import convert
from trainer.crossval import Scored, metrics
from trainer.records import RecordsError, build_records, read_identities, record_files

IDENTITIES = "identity_CelebA.txt"  # CelebA's image → person file, beside list_attr_celeba.txt
PERSON_FOLDS = 9  # with 10 % of people held out: 80 % train on 8 folds, 10 % validate on the 9th
DEFAULT_PEOPLE_HASH = (0, 10)  # (seed, percent held out) when the champion's training had none


@dataclasses.dataclass(frozen=True)
class FolderRecords:
    """One training folder's records: the specs that train, the one that validates, the
    held-out one the gate scores, and image → person when split by person."""

    train: list[str]
    val: str
    test: str
    people: dict[str, str] | None


def folder_records(
    settings: Settings, folder: Path, out: Path, size: int, people_hash: tuple[int, int]
) -> FolderRecords:
    """Records of one FACELABEL_TRAIN_DATA folder. With IDENTITIES beside its annotation:
    person folds (``people_hash``: the seed and the percent of people held out; the others
    spread over PERSON_FOLDS folds, the last validating). Without: 80/10/10 by a hash of the
    image name. Either way a face keeps its split as the data grows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    selection = out.with_suffix(".json")
    convert(folder / "list_attr_celeba.txt", selection, mixed_num=10_000, seed=0)
    images = next((folder / n for n in ("images", "img_align_celeba") if (folder / n).is_dir()), folder)
    common = {"size": size, "framing": settings.train_framing}
    if not (folder / IDENTITIES).is_file():
        build_records(selection, images, out, ratios=(80, 10, 10), stable=True, **common)
        return FolderRecords([str(out / "train")], str(out / "val"), str(out / "test"), None)
    people = read_identities(folder / IDENTITIES)
    seed, test_percent = people_hash
    folds = {"folds": PERSON_FOLDS, "test_percent": test_percent}
    manifest = build_records(
        selection, images, out, ratios=None, seed=seed, identities=people, folds=folds, **common
    )
    filled = [f"fold{k}" for k in range(PERSON_FOLDS) if manifest["splits"][f"fold{k}"]["images"]]
    if len(filled) < 2:
        raise RecordsError(f"{folder}: too few people to train and validate on different ones")
    return FolderRecords(
        [str(out / f) for f in filled[:-1]], str(out / filled[-1]), str(out / "test"), people
    )


def held_out_people(meta: dict) -> tuple[int, int] | None:
    """(seed, percent) of the person hash (``records.person_folds``) that held people out of
    the training of the model with metadata ``meta``; None unless every CelebA-format set it
    trained on was person folds of that one hash."""
    hashes = set()
    for spec, manifest in (((meta.get("training") or {}).get("data") or {}).get("train") or {}).items():
        if "split" not in manifest:  # human corrections: photos, not people of the data
            continue
        split = manifest["split"]
        if not isinstance(split, dict) or "test_percent" not in split or Path(spec).name == "test":
            return None
        hashes.add((split["seed"], split["test_percent"]))
    return hashes.pop() if len(hashes) == 1 else None


def score(model_dir: str | Path, sets: list[FolderRecords], size: int) -> dict:
    """Metrics of the model at ``model_dir`` (its own thresholds) on the held-out record crops
    of ``size`` px, resized to its input when that differs: ``crossval.metrics``, intervals
    from resampling people when every set was split by person (``split``: BY_PERSON), else
    faces (BY_IMAGE, no ``people``)."""
    from facelabel.vision.classifier import Classifier

    artifact = load_artifact(model_dir)
    classifier = Classifier(artifact)
    by_person = all(s.people is not None for s in sets)
    parts = []
    for index, held_out in enumerate(sets):
        for file in _shards(held_out.test):
            probabilities, labels, names = _predict(classifier, artifact.input_size, file, size)
            people = [held_out.people[n] for n in names] if by_person else [f"{index}/{n}" for n in names]
            parts.append(
                Scored([str(index)] * len(names), [-1] * len(names), people, names, probabilities, labels)
            )
    if not parts:
        raise RecordsError("the training data holds no held-out faces to score the gate on")
    scored = Scored(
        *([x for p in parts for x in getattr(p, f)] for f in ("folder", "fold", "person", "image")),
        np.concatenate([p.probabilities for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )
    thresholds = np.tile([artifact.thresholds[a] for a in ATTRIBUTES], (len(scored.image), 1))
    report = metrics(scored, thresholds) | {"split": BY_PERSON if by_person else BY_IMAGE}
    if not by_person:
        del report["people"]
    return report


def _shards(spec: str) -> list[str]:
    try:
        return record_files(spec)
    except RecordsError:
        return []  # a split with no faces has no shards


def _predict(classifier, input_size: int, file: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(probabilities, labels, image names) of one shard, in record order."""
    import tensorflow as tf

    from trainer.dataset import load, names_of

    probabilities, labels = [], []
    for images, batch_labels in load([file], size=size, batch_size=64, training=False):
        if size != input_size:
            images = tf.image.resize(images, (input_size, input_size))
        pixels = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8).numpy()
        probabilities.append(classifier.predict(pixels))
        labels.append(batch_labels.numpy())
    return np.concatenate(probabilities), np.concatenate(labels).astype(int), names_of([file])
