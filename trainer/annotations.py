"""CelebA annotations → the selection JSON the trainer works from.

``list_attr_celeba.txt`` is a count line, a line of attribute names, then one line per image
(``000001.jpg`` and one 1/-1 per attribute); any whitespace, CRLF or LF.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Iterator

from facelabel.artifact import ATTRIBUTES
from facelabel.errors import FacelabelError

# facelabel attribute → (CelebA column, the CelebA value that means "present")
CELEBA_COLUMNS = {
    "eyeglasses": ("Eyeglasses", 1),
    "beard": ("No_Beard", -1),
    "mustache": ("Mustache", 1),
    "hat": ("Wearing_Hat", 1),
}
PARTITIONS = {"0": "train", "1": "val", "2": "test"}


class AnnotationError(FacelabelError):
    """A malformed annotation or partition file; ``str()`` names the file, line and problem."""


@dataclasses.dataclass(frozen=True)
class Example:
    image: str
    labels: tuple[int, ...]  # 0/1 in ATTRIBUTES order
    partition: str | None = None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line


def read_attributes(path: str | Path) -> list[Example]:
    """Every image's labels, in file order."""
    path = Path(path)
    lines = _lines(path)

    def fail(number: int, problem: str) -> AnnotationError:
        return AnnotationError(f"{path}, line {number}: {problem}")

    try:
        number, count_line = next(lines)
        number, names_line = next(lines)
    except StopIteration:
        raise AnnotationError(f"{path}: expected a count line and an attribute-name line") from None
    try:
        declared = int(count_line.strip())
    except ValueError:
        raise fail(1, f"first line must be the image count, got {count_line.strip()[:40]!r}") from None
    names = names_line.split()
    missing = [column for column, _ in CELEBA_COLUMNS.values() if column not in names]
    if missing:
        raise fail(number, f"attribute names lack {', '.join(missing)}")
    columns = [(names.index(column), present) for column, present in CELEBA_COLUMNS.values()]
    examples = []
    for number, line in lines:
        fields = line.split()
        if len(fields) != len(names) + 1:
            raise fail(number, f"expected an image name and {len(names)} values, got {len(fields)} fields")
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            raise fail(number, "attribute values must be 1 or -1") from None
        if any(v not in (1, -1) for v in values):
            raise fail(number, "attribute values must be 1 or -1")
        labels = tuple(int(values[index] == present) for index, present in columns)
        examples.append(Example(fields[0], labels))
    if len(examples) != declared:
        raise AnnotationError(
            f"{path}: the first line declares {declared} images, the file has {len(examples)}"
        )
    return examples


def read_partition(path: str | Path) -> dict[str, str]:
    """Image name → ``train``, ``val`` or ``test`` from ``list_eval_partition.txt``."""
    path = Path(path)
    partition = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in PARTITIONS:
            raise AnnotationError(f"{path}, line {number}: expected 'NAME 0|1|2', got {line.strip()[:60]!r}")
        partition[fields[0]] = PARTITIONS[fields[1]]
    return partition


def select(examples: list[Example], *, mixed_num: int, seed: int) -> list[Example]:
    """Every image with at least one attribute, plus ``mixed_num`` all-negative images drawn
    at random (seeded); file order is kept."""
    negatives = [e for e in examples if not any(e.labels)]
    rng = random.Random(seed)
    chosen = {e.image for e in rng.sample(negatives, min(mixed_num, len(negatives)))}
    return [e for e in examples if any(e.labels) or e.image in chosen]


def convert(
    annotation: str | Path,
    out: str | Path,
    *,
    mixed_num: int,
    seed: int,
    partition: str | Path | None = None,
) -> dict:
    """Write the selection JSON; returns its summary (counts and positives per split)."""
    examples = read_attributes(annotation)
    if partition is not None:
        split = read_partition(partition)
        unknown = [e.image for e in examples if e.image not in split]
        if unknown:
            raise AnnotationError(f"{partition}: no partition for {len(unknown)} images, e.g. {unknown[0]}")
        examples = [dataclasses.replace(e, partition=split[e.image]) for e in examples]
    selected = select(examples, mixed_num=mixed_num, seed=seed)
    summary = summarize(selected)
    document = {
        "attributes": list(ATTRIBUTES),
        "source": {"annotation": str(annotation), "partition": str(partition) if partition else None},
        "mixed_num": mixed_num,
        "seed": seed,
        "summary": summary,
        "images": [dataclasses.asdict(e) for e in selected],
    }
    Path(out).write_text(json.dumps(document, indent=1) + "\n")
    return summary


def load_selection(path: str | Path) -> list[Example]:
    try:
        document = json.loads(Path(path).read_text())
        if document.get("attributes") != list(ATTRIBUTES):
            raise AnnotationError(f"{path}: attributes must be {list(ATTRIBUTES)}")
        return [Example(i["image"], tuple(i["labels"]), i.get("partition")) for i in document["images"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnnotationError(f"{path}: not a selection file from 'facelabel data convert': {exc}") from None


def summarize(examples: list[Example]) -> dict:
    """Images and positives per attribute, overall and per partition."""

    def count(group: list[Example]) -> dict:
        positives = {a: sum(e.labels[i] for e in group) for i, a in enumerate(ATTRIBUTES)}
        return {"images": len(group), "positives": positives}

    summary = {"all": count(examples)}
    for name in sorted({e.partition for e in examples if e.partition}):
        summary[name] = count([e for e in examples if e.partition == name])
    return summary
