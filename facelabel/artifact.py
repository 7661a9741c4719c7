"""The model artifact contract: ``model.keras`` plus ``model.json`` beside it.

The JSON carries everything a worker needs to use the model (attribute order, input size,
framing, thresholds) and where it came from (backbone, data, metrics). Reading it needs no
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from facelabel.errors import FacelabelError

ATTRIBUTES = ("eyeglasses", "beard", "mustache", "hat")
FORMAT = "facelabel-model/1"
WEIGHTS_FILE = "model.keras"
METADATA_FILE = "model.json"


class ArtifactError(FacelabelError):
    """A model directory that cannot be used; ``str()`` says why."""


@dataclasses.dataclass(frozen=True)
class ModelArtifact:
    directory: Path
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    @property
    def attributes(self) -> tuple[str, ...]:
        """The model's outputs, in order: ``ATTRIBUTES`` (``load_artifact`` refuses others)."""
        return tuple(self.meta["attributes"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {a: float(self.meta["thresholds"][a]) for a in self.attributes}

    @property
    def weights_path(self) -> Path:
        return self.directory / WEIGHTS_FILE

    def weights_sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.weights_path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def load_artifact(path: str | Path) -> ModelArtifact:
    """Read and check the artifact in ``path`` (its directory, or its .keras or .json file)."""
    path = Path(path).expanduser().resolve()
    directory = path.parent if path.is_file() else path
    meta_path = directory / METADATA_FILE
    if not (directory / WEIGHTS_FILE).is_file() or not meta_path.is_file():
        raise ArtifactError(f"no model at {path}: expected {WEIGHTS_FILE} and {METADATA_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"unreadable {meta_path}: {exc}") from None
    _check(meta, meta_path)
    return ModelArtifact(directory=directory, meta=meta)


def write_metadata(directory: Path, meta: dict[str, Any]) -> Path:
    """Write ``model.json`` after checking it against the contract."""
    meta = {"format": FORMAT, **meta}
    target = Path(directory) / METADATA_FILE
    _check(meta, target)
    target.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return target


# How the training crops were made: "aligned" = the whole CelebA-aligned image, "detected" =
# the largest MTCNN face framed as an aligned crop (what a worker computes on a photo).
FRAMINGS = ("aligned", "detected")


def _check(meta: Any, where: Path) -> None:
    def fail(reason: str) -> None:
        raise ArtifactError(f"{where}: {reason}")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fail(f"not a {FORMAT} metadata file")
    for key in ("name", "backbone", "input_size", "framing", "thresholds", "attributes"):
        if key not in meta:
            fail(f"missing {key!r}")
    if tuple(meta["attributes"]) != ATTRIBUTES:
        fail(f"attributes must be {list(ATTRIBUTES)}, got {meta['attributes']}")
    if not isinstance(meta["input_size"], int) or not 16 <= meta["input_size"] <= 1024:
        fail(f"input_size must be an integer in 16..1024, got {meta['input_size']!r}")
    if meta["framing"] not in FRAMINGS:
        fail(f"unknown framing {meta['framing']!r}")
    thresholds = meta["thresholds"]
    for attribute in ATTRIBUTES:
        value = thresholds.get(attribute) if isinstance(thresholds, dict) else None
        if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            fail(f"threshold for {attribute} must be a number in (0, 1), got {value!r}")
