"""Model building: an ImageNet backbone under a four-way sigmoid head.

Raw RGB pixels (0–255) go in; the backbone's preprocessing is made of standard Keras layers
inside the model, so a saved ``.keras`` file carries it, loads in safe mode, and serving
cannot drift from training. Only the backbone asked for is instantiated.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from facelabel.artifact import ATTRIBUTES, WEIGHTS_FILE, write_metadata

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class Backbone(NamedTuple):
    constructor: str | None  # in keras.applications; None: ported from torch (see PORTED)
    preprocessing: str  # see preprocessing()
    takes_alpha: bool


BACKBONES = {
    "mobilenet": Backbone("MobileNet", "tf", True),
    "mobilenetv2": Backbone("MobileNetV2", "tf", True),
    "efficientnetb0": Backbone("EfficientNetB0", "none", False),
    "resnet50": Backbone("ResNet50", "caffe", False),
    "vgg16": Backbone("VGG16", "caffe", False),
    "inceptionv3": Backbone("InceptionV3", "tf", False),
    "mobilenetv2-torch": Backbone(None, "torch", False),
    "efficientnet-lite0-torch": Backbone(None, "lite", False),
}
# backbones whose ImageNet weights come from a torch file: the module that ports them and the
# function in it that builds the network
PORTED = {
    "mobilenetv2-torch": ("trainer.torch_port", "build_mobilenet_v2"),
    "efficientnet-lite0-torch": ("trainer.efficientnet_lite_port", "build_efficientnet_lite0"),
}


def preprocessing(kind: str, name: str = "preprocess"):
    """Standard layers mapping 0–255 RGB to what a backbone was trained on."""
    import numpy as np
    from keras import layers

    if kind == "tf":  # [-1, 1]
        return layers.Rescaling(1 / 127.5, offset=-1.0, name=name)
    if kind == "torch":  # x/255, then ImageNet mean/std per channel
        mean = [255 * m for m in IMAGENET_MEAN]
        variance = [(255 * s) ** 2 for s in IMAGENET_STD]
        return layers.Normalization(mean=mean, variance=variance, name=name)
    if kind == "lite":  # EfficientNet-Lite: (x - 127) / 128
        return layers.Rescaling(1 / 128, offset=-127 / 128, name=name)
    if kind == "caffe":  # RGB → BGR, minus the ImageNet mean: a fixed 1×1 convolution
        conv = layers.Conv2D(3, 1, name=name, trainable=False)
        conv.build((None, None, None, 3))
        conv.set_weights([np.eye(3)[::-1].reshape(1, 1, 3, 3), -np.array(CAFFE_MEAN_BGR)])
        return conv
    if kind == "none":
        return layers.Identity(name=name)
    raise ValueError(f"unknown preprocessing {kind!r}")


def build_backbone(backbone: str, *, input_size: int, weights: str | Path | None, alpha: float):
    import keras

    constructor, _, takes_alpha = BACKBONES[backbone]  # a Recipe checked the name and weights
    shape = (input_size, input_size, 3)
    if constructor is None:
        import importlib

        module, function = PORTED[backbone]
        base = getattr(importlib.import_module(module), function)(shape)
        if weights:
            base.load_weights(str(weights))
        return base
    options = {"alpha": alpha} if takes_alpha else {}
    build = getattr(keras.applications, constructor)
    return build(input_shape=shape, include_top=False, weights=str(weights) if weights else None, **options)


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

    base = build_backbone(backbone, input_size=input_size, weights=weights, alpha=alpha)
    base.trainable = False
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = preprocessing(BACKBONES[backbone].preprocessing)(inputs)
    x = base(x, training=False)  # BatchNorm stays in inference mode, also when fine-tuning
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(len(ATTRIBUTES), activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name=f"facelabel_{backbone.replace('-', '_')}")


def unfreeze(model, *, fraction: float = 1.0) -> int:
    """Make the top ``fraction`` of the backbone's layers trainable, BatchNorm kept frozen.

    Returns the number of trainable backbone layers.
    """
    from keras import layers

    base = next(layer for layer in model.layers if hasattr(layer, "layers"))
    base.trainable = True
    start = int(len(base.layers) * (1.0 - fraction))
    count = 0
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= start and not isinstance(layer, layers.BatchNormalization)
        count += layer.trainable
    return count


def save_artifact(model, directory: str | Path, meta: dict) -> Path:
    """Write ``model.keras`` (weights only, no optimizer state) and ``model.json``."""
    import keras

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # An uncompiled model over the same layers: a compiled one would also save Adam's two
    # moments per weight, tripling the file.
    keras.Model(model.inputs, model.outputs, name=model.name).save(directory / WEIGHTS_FILE)
    write_metadata(directory, meta)
    return directory
