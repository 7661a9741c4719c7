"""Keras model → checked TFLite flatbuffer, cached.

The flatbuffer is made on first use of a model version and cached under
FACELABEL_CACHE_DIR, named by the sha256 of the Keras weights it came from (the digest the
registry records for the version). It is trusted only after its outputs on a fixed batch
match Keras's within ``TOLERANCE``; a sidecar JSON keeps its own sha256 (checked at every
load), the difference measured and when it was made. Conversion alone needs TensorFlow.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from facelabel.artifact import ArtifactError, ModelArtifact
from facelabel.clock import iso, utcnow
from facelabel.quiet import load_tensorflow
from facelabel.vision.keras_classifier import Classifier
from facelabel.vision.litert import BatchRunner

TOLERANCE = 1e-4  # max abs difference from Keras on the check batch


def converted(artifact: ModelArtifact, cache_dir: Path, digest: str) -> Path:
    """The checked flatbuffer of ``artifact`` (whose weights hash to ``digest``), converting it
    first if the cache lacks it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path, sidecar = cache_dir / f"{digest}.tflite", cache_dir / f"{digest}.json"
    with open(cache_dir / f"{digest}.lock", "w") as lock:  # one conversion at a time per model
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path.exists() and sidecar.exists()):
            flat, difference = _convert(artifact)
            record = {
                "keras_sha256": digest,
                "tflite_sha256": hashlib.sha256(flat).hexdigest(),
                "max_abs_difference": difference,
                "tolerance": TOLERANCE,
                "converted_at": iso(utcnow()),
            }
            _write_atomically(path, flat)
            _write_atomically(sidecar, json.dumps(record, indent=2).encode())
    record = json.loads(sidecar.read_text())
    if hashlib.sha256(path.read_bytes()).hexdigest() != record["tflite_sha256"]:
        raise ArtifactError(f"{path} does not match the digest recorded at conversion: delete it")
    return path


def _convert(artifact: ModelArtifact) -> tuple[bytes, float]:
    """The model as a TFLite flatbuffer taking uint8 pixels (any batch size), and its largest
    difference from Keras on the check batch (ArtifactError past the tolerance)."""
    tf = load_tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    keras_model = Classifier(artifact)
    # Variables frozen to constants first: converted as they are, Keras 3 variables come out
    # as uninitialised resource reads (a tiny flatbuffer that predicts nonsense).
    frozen = convert_variables_to_constants_v2(keras_model.forward.get_concrete_function())
    flat = tf.lite.TFLiteConverter.from_concrete_functions([frozen], keras_model.model).convert()
    size = artifact.input_size
    pixels = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), np.uint8)
    lite = BatchRunner(flat, size=size, threads=1)(pixels)
    difference = float(np.abs(lite - keras_model.predict(pixels)).max())
    if difference > TOLERANCE:
        raise ArtifactError(
            f"{artifact.name}: the LiteRT conversion differs from Keras by {difference:.2g} "
            f"(more than {TOLERANCE}); use FACELABEL_RUNTIME=keras"
        )
    return flat, difference


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_suffix(path.suffix + f".{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
