"""The classifier on LiteRT: the same Keras model converted to a TFLite flatbuffer, about
twice the faces/s of the compiled Keras call on CPUs (bench/throughput.py), loaded in a
fraction of a second and without TensorFlow.

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
import threading
from pathlib import Path

import numpy as np

from facelabel.artifact import ArtifactError, ModelArtifact
from facelabel.clock import iso, utcnow
from facelabel.quiet import load_tensorflow
from facelabel.vision.litert import interpreter

TOLERANCE = 1e-4  # max abs difference from Keras on the check batch


class LiteClassifier:
    """uint8 face crops in, one probability per attribute out, on LiteRT."""

    def __init__(self, artifact: ModelArtifact, *, cache_dir: Path, threads: int, digest: str | None = None):
        self.artifact = artifact
        self.path = converted(artifact, cache_dir, digest or artifact.weights_sha256())
        self._run = _Runner(self.path, size=artifact.input_size, threads=threads)
        self._lock = threading.Lock()  # one interpreter: one batch at a time

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, 4), for a uint8 batch of shape (n, size, size, 3)."""
        if len(pixels) == 0:
            return np.zeros((0, 4), dtype=np.float32)
        with self._lock:
            return self._run(pixels)


class _Runner:
    """A LiteRT interpreter fed uint8 batches of any size (its input is resized on change)."""

    def __init__(self, model: Path | bytes, *, size: int, threads: int):
        self.interpreter, self.size, self.batch = interpreter(model, threads=threads), size, None
        (source,), (target,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        self.input, self.output = source["index"], target["index"]

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if self.batch != len(pixels):
            self.interpreter.resize_tensor_input(self.input, [len(pixels), self.size, self.size, 3])
            self.interpreter.allocate_tensors()
            self.batch = len(pixels)
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(pixels, dtype=np.uint8))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


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
    from facelabel.vision.classifier import Classifier  # Keras: conversion alone needs TensorFlow

    tf = load_tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    keras_model = Classifier(artifact)
    # Variables frozen to constants first: converted as they are, Keras 3 variables come out
    # as uninitialised resource reads (a tiny flatbuffer that predicts nonsense).
    frozen = convert_variables_to_constants_v2(keras_model.forward.get_concrete_function())
    flat = tf.lite.TFLiteConverter.from_concrete_functions([frozen], keras_model.model).convert()
    size = artifact.input_size
    pixels = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), np.uint8)
    lite = _Runner(flat, size=size, threads=1)(pixels)
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
