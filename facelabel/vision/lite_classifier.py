"""The classifier on LiteRT: the same Keras model converted to a TFLite flatbuffer
(litert_conversion.py), about twice the faces/s of the compiled Keras call on CPUs
(bench/throughput.py), loaded in a fraction of a second and without TensorFlow once the
flatbuffer is cached.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from facelabel.artifact import ModelArtifact
from facelabel.vision.litert import BatchRunner
from facelabel.vision.litert_conversion import converted


class LiteClassifier:
    """uint8 face crops in, one probability per attribute out, on LiteRT."""

    def __init__(self, artifact: ModelArtifact, *, cache_dir: Path, threads: int, digest: str | None = None):
        self.artifact = artifact
        self.path = converted(artifact, cache_dir, digest or artifact.weights_sha256())
        self._run = BatchRunner(self.path, size=artifact.input_size, threads=threads)
        self._lock = threading.Lock()  # one interpreter: one batch at a time

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities, one column per attribute, for a uint8 batch of shape (n, size, size, 3)."""
        if len(pixels) == 0:
            return np.zeros((0, len(self.artifact.attributes)), dtype=np.float32)
        with self._lock:
            return self._run(pixels)
