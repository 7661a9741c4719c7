"""Model building: an ImageNet backbone under a four-way sigmoid head.

Raw RGB pixels (0–255) go in; the backbone's preprocessing is a layer inside the model,
so a saved ``.keras`` file carries it and serving cannot drift from training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from facelabel.artifact import ATTRIBUTES, WEIGHTS_FILE, write_metadata


@dataclasses.dataclass(frozen=True)
class Backbone:
    """How to build one Keras application and scale pixels for it."""

    build: Callable[..., object]
    scale: float
    offset: float


def _backbones() -> dict[str, Backbone]:
    import keras

    apps = keras.applications
    to_unit = Backbone  # pixels / 127.5 - 1, the scaling of the MobileNet family
    return {
        "mobilenet": to_unit(apps.MobileNet, 1 / 127.5, -1.0),
        "mobilenetv2": to_unit(apps.MobileNetV2, 1 / 127.5, -1.0),
    }


def build_model(
    backbone: str = "mobilenet",
    *,
    input_size: int = 160,
    weights: str | Path | None = "imagenet",
    alpha: float = 0.25,
    dropout: float = 0.2,
):
    """A frozen ImageNet backbone with a pooled, dropout, Dense(4, sigmoid) head."""
    import keras
    from keras import layers

    spec = _backbones().get(backbone)
    if spec is None:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(_backbones())}")
    shape = (input_size, input_size, 3)
    base = spec.build(
        input_shape=shape, include_top=False, weights=str(weights) if weights else None, alpha=alpha
    )
    base.trainable = False
    inputs = keras.Input(shape, name="pixels")
    x = layers.Rescaling(spec.scale, offset=spec.offset, name="preprocess")(inputs)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(len(ATTRIBUTES), activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name=f"facelabel_{backbone}")


def save_artifact(model, directory: str | Path, meta: dict) -> Path:
    """Write ``model.keras`` and its ``model.json`` contract into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / WEIGHTS_FILE)
    write_metadata(directory, meta)
    return directory
