"""The classifier on Keras: the artifact's ``.keras`` file loaded in safe mode and called as
one compiled forward pass per batch (GPUs; the LiteRT conversion starts from it too)."""

from __future__ import annotations

import numpy as np

from facelabel.artifact import ArtifactError, ModelArtifact
from facelabel.quiet import load_tensorflow


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
        size, width = artifact.input_size, len(artifact.attributes)
        expected = (None, size, size, 3)
        if tuple(self.model.input_shape) != expected or tuple(self.model.output_shape) != (None, width):
            raise ArtifactError(
                f"{artifact.weights_path}: model takes {self.model.input_shape} and gives "
                f"{self.model.output_shape}; its metadata promises {expected} -> (None, {width})"
            )
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
        def forward(pixels):
            return model(tf.cast(pixels, tf.float32), training=False)

        self.forward = forward
        self.predict(np.zeros((1, size, size, 3), np.uint8))  # trace now, not in the first chunk

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities, one column per attribute, for a uint8 batch of shape (n, size, size, 3)."""
        if len(pixels) == 0:
            return np.zeros((0, len(self.artifact.attributes)), dtype=np.float32)
        return self.forward(pixels).numpy()
