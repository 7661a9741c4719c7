"""The model inside a worker process: loaded once (safe mode), one compiled forward pass
per batch. This is the only worker module that imports TensorFlow."""

from __future__ import annotations

import logging
import threading

import numpy as np

from facelabel.artifact import ArtifactError, ModelArtifact, load_artifact
from facelabel.tensorflow_import import load_tensorflow

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[str, "Classifier"] = {}


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

        self._forward = forward
        self.predict(np.zeros((1, size, size, 3), np.uint8))  # trace now, not in the first chunk

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities, shape (n, 4), for a uint8 batch of shape (n, size, size, 3)."""
        if len(pixels) == 0:
            return np.zeros((0, 4), dtype=np.float32)
        return self._forward(pixels).numpy()


def get_classifier(model_path: str) -> Classifier:
    """The classifier for ``model_path``, loaded once per process (threads share it).

    Keeps only the most recently used model, so switching versions does not grow memory.
    """
    with _lock:
        classifier = _loaded.get(model_path)
        if classifier is None:
            log.info("loading model %s", model_path)
            classifier = Classifier(load_artifact(model_path))
            _loaded.clear()
            _loaded[model_path] = classifier
        return classifier
