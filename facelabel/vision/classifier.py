"""The model inside a worker process, loaded once (safe mode) on the runtime
FACELABEL_RUNTIME names: Keras (one compiled forward pass per batch; GPUs) or LiteRT (the
same model converted, lite_classifier.py; CPUs)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from facelabel.artifact import ArtifactError, ModelArtifact, load_artifact
from facelabel.quiet import load_tensorflow
from facelabel.settings import Settings
from facelabel.vision.lite_classifier import LiteClassifier

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[tuple[str, str], "Classifier | LiteClassifier"] = {}


class Classifier:
    """A loaded artifact: uint8 face crops in, one probability per attribute out."""

    def __init__(self, artifact: ModelArtifact):
        tf = load_tensorflow()
        import keras

        self.artifact = artifact
        try:
            self.model = keras.saving.load_model(artifact.weights_path, compile=False, safe_mode=True)
        except (OSError, ValueError) as exc:  # unreadable, or refused by safe mode
            raise ArtifactError(f"cannot load model {artifact.name}: {exc}") from None
        size = artifact.input_size
        expected = (None, size, size, 3)
        if tuple(self.model.input_shape) != expected or tuple(self.model.output_shape) != (None, 4):
            raise ArtifactError(
                f"{artifact.weights_path}: model takes {self.model.input_shape} and gives "
                f"{self.model.output_shape}; its metadata promises {expected} -> (None, 4)"
            )
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
        def forward(pixels):
            return model(tf.cast(pixels, tf.float32), training=False)

        self.forward = forward
        self.predict(np.zeros((1, size, size, 3), np.uint8))  # trace now, not in the first chunk

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, 4), for a uint8 batch of shape (n, size, size, 3)."""
        if len(pixels) == 0:
            return np.zeros((0, 4), dtype=np.float32)
        return self.forward(pixels).numpy()


def runtime_for(setting: str) -> str:
    """``auto``: Keras where an NVIDIA GPU is visible, LiteRT on CPUs (told without TensorFlow)."""
    if setting != "auto":
        return setting
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return "litert"
    return "keras" if any(Path("/proc/driver/nvidia/gpus").glob("*")) else "litert"


def get_classifier(
    model_path: str, settings: Settings, *, sha256: str | None = None
) -> Classifier | LiteClassifier:
    """The classifier for ``model_path`` on the settings' runtime, loaded once per process
    (threads share it), refused if its weights are not the ``sha256`` the registry recorded.
    Keeps only the most recently used model, so switching versions does not grow memory."""
    runtime = runtime_for(settings.runtime)
    with _lock:
        classifier = _loaded.get((model_path, runtime))
        if classifier is None:
            log.info("loading model %s on %s", model_path, runtime)
            artifact = load_artifact(model_path)
            digest = artifact.weights_sha256() if sha256 is not None or runtime == "litert" else None
            if sha256 is not None and digest != sha256:
                raise ArtifactError(f"{artifact.weights_path} changed since it was registered")
            if runtime == "keras":
                classifier = Classifier(artifact)
            else:
                threads = settings.runtime_threads or len(os.sched_getaffinity(0))
                classifier = LiteClassifier(
                    artifact, cache_dir=settings.cache_dir, threads=threads, digest=digest
                )
            _loaded.clear()
            _loaded[(model_path, runtime)] = classifier
        return classifier
