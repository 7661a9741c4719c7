"""Model building: an ImageNet backbone under a sigmoid head, one output per attribute.

Raw RGB pixels (0–255) go in; the backbone's preprocessing is made of standard Keras layers
inside the model, so a saved ``.keras`` file carries it, loads in safe mode, and serving
cannot drift from training. Only the backbone asked for is instantiated.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from facelabel.artifact import ATTRIBUTES, WEIGHTS_FILE, write_metadata

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class Backbone(NamedTuple):
    constructor: str | None  # in keras.applications; None: ported (see PORTED) or FaceNet's file
    preprocessing: str  # see preprocessing()
    takes_alpha: bool


LITE_VARIANTS = ("lite0", "lite1", "lite2")  # EfficientNet-Lite: trainer.efficientnet_lite_port.VARIANTS
BACKBONES = {
    "mobilenet": Backbone("MobileNet", "tf", True),
    "mobilenetv2": Backbone("MobileNetV2", "tf", True),
    "efficientnetb0": Backbone("EfficientNetB0", "none", False),
    "resnet50": Backbone("ResNet50", "caffe", False),
    "vgg16": Backbone("VGG16", "caffe", False),
    "inceptionv3": Backbone("InceptionV3", "tf", False),
    "mobilenetv2-torch": Backbone(None, "torch", False),
    **{f"efficientnet-{variant}-torch": Backbone(None, "lite", False) for variant in LITE_VARIANTS},
    "facenet": Backbone(None, "standardise", False),
}
# backbones whose ImageNet weights come from a torch file: the module that ports them, the
# function in it that builds the network and its options (FaceNet builds from its own Keras 2 file)
PORTED = {
    "mobilenetv2-torch": ("trainer.torch_port", "build_mobilenet_v2", {}),
    **{
        f"efficientnet-{variant}-torch": (
            "trainer.efficientnet_lite_port",
            "build_efficientnet_lite",
            {"variant": variant},
        )
        for variant in LITE_VARIANTS
    },
}
FROZEN = "backbone_frozen"  # the part under Recipe.frozen_below, whose outputs train() caches


def preprocessing(kind: str, name: str = "preprocess"):
    """Standard layers mapping 0–255 RGB to what a backbone was trained on."""
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
    if kind == "standardise":  # FaceNet: each image minus its mean, over its standard deviation
        return layers.LayerNormalization(axis=(1, 2, 3), epsilon=1e-3, center=False, scale=False, name=name)
    if kind == "none":
        return layers.Identity(name=name)
    raise ValueError(f"unknown preprocessing {kind!r}")


def build_backbone(
    backbone: str,
    *,
    input_size: int,
    weights: str | Path | None,
    alpha: float,
    frozen_below: str | None = None,
    float16: bool = False,
) -> list:
    """The backbone as a chain of models: one, or (``frozen_below``, FaceNet only) the part under
    that layer and the part above it. ``float16`` rounds the starting weights to float16, as
    ``save_artifact`` stores them, so a cached frozen part's outputs match the saved model's."""
    import keras

    constructor, _, takes_alpha = BACKBONES[backbone]  # a Recipe checked the name and weights
    shape = (input_size, input_size, 3)
    if backbone == "facenet":
        from trainer.facenet_port import build_facenet, port

        if frozen_below:
            below = build_facenet(shape, str(weights), until=frozen_below)
            parts = [below, build_facenet(below.output.shape[1:], str(weights), start=frozen_below)]
        else:
            parts = [build_facenet(shape, str(weights))]
        for part in parts:
            port(part, str(weights))
    elif constructor is None:
        import importlib

        module, function, options = PORTED[backbone]
        parts = [getattr(importlib.import_module(module), function)(shape, **options)]
        if weights:
            parts[0].load_weights(str(weights))
    else:
        options = {"alpha": alpha} if takes_alpha else {}
        build = getattr(keras.applications, constructor)
        weights = str(weights) if weights else None
        parts = [build(input_shape=shape, include_top=False, weights=weights, **options)]
    if float16:
        for part in parts:
            part.set_weights([w.astype("float16").astype(w.dtype) for w in part.get_weights()])
    return parts


def build_model(
    backbone: str = "mobilenet",
    *,
    input_size: int = 160,
    weights: str | Path | None = "imagenet",
    alpha: float = 0.25,
    dropout: float = 0.2,
    frozen_below: str | None = None,
    float16: bool = False,
):
    """A frozen backbone with a pooled, dropout, Dense(len(ATTRIBUTES), sigmoid) head."""
    import keras
    from keras import layers

    parts = build_backbone(
        backbone,
        input_size=input_size,
        weights=weights,
        alpha=alpha,
        frozen_below=frozen_below,
        float16=float16,
    )
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = preprocessing(BACKBONES[backbone].preprocessing)(inputs)
    for part in parts:
        part.trainable = False
    if len(parts) == 2:
        parts[0].name = FROZEN
        x = parts.pop(0)(x, training=False)
    x = parts[0](x, training=False)  # BatchNorm stays in inference mode, also when fine-tuning
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(len(ATTRIBUTES), activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name=f"facelabel_{backbone.replace('-', '_')}")


class CacheSplit(NamedTuple):
    """A model with a frozen part, as two models over its layers: ``below`` (pixels to the
    frozen part's outputs, which can be computed once and cached) and ``above`` (the rest)."""

    below: object
    above: object


def cache_split(model) -> CacheSplit | None:
    """The model's ``CacheSplit``, or None when it has no frozen part."""
    import keras

    names = [layer.name for layer in model.layers]
    if FROZEN not in names:
        return None
    frozen = model.get_layer(FROZEN)
    below = keras.Model(model.inputs, frozen(model.get_layer("preprocess")(model.inputs[0])))
    cached = keras.Input(frozen.output.shape[1:], name="frozen_features")
    x = cached
    for layer in model.layers[names.index(FROZEN) + 1 :]:
        x = layer(x)
    return CacheSplit(below, keras.Model(cached, x))


def unfreeze(model, *, fraction: float = 1.0) -> int:
    """Make the top ``fraction`` of the backbone's layers trainable, BatchNorm kept frozen.

    Returns the number of trainable backbone layers.
    """
    from keras import layers

    base = [layer for layer in model.layers if hasattr(layer, "layers") and layer.name != FROZEN][-1]
    base.trainable = True
    start = int(len(base.layers) * (1.0 - fraction))
    count = 0
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= start and not isinstance(layer, layers.BatchNormalization)
        count += layer.trainable
    return count


def save_artifact(model, directory: str | Path, meta: dict, *, float16: bool = False) -> Path:
    """Write ``model.keras`` (weights only, no optimizer state; ``float16``: stored at half
    precision, loaded back as float32) and ``model.json``."""
    import keras

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # An uncompiled model over the same layers: a compiled one would also save Adam's two
    # moments per weight, tripling the file.
    keras.Model(model.inputs, model.outputs, name=model.name).save(directory / WEIGHTS_FILE)
    if float16:
        _store_float16(directory / WEIGHTS_FILE)
    write_metadata(directory, meta)
    return directory


def _store_float16(path: Path) -> None:
    """Rewrite the weights inside a ``.keras`` file as float16 (Keras casts them back on load)."""
    import shutil
    import tempfile
    import zipfile

    import h5py

    with tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(scratch)
            members = archive.namelist()
        weights = Path(scratch) / "model.weights.h5"
        halved = Path(scratch) / "halved.weights.h5"
        with h5py.File(weights, "r") as source, h5py.File(halved, "w") as target:

            def copy(name, item):
                if isinstance(item, h5py.Group):
                    target.require_group(name).attrs.update(item.attrs)
                else:
                    value = item[()]
                    half = value.dtype == np.float32
                    target.create_dataset(name, data=value.astype(np.float16) if half else value)

            target.attrs.update(source.attrs)
            source.visititems(copy)
        shutil.move(halved, weights)
        rewritten = Path(scratch) / "rewritten.keras"
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in members:
                archive.write(Path(scratch) / member, member)
        shutil.move(rewritten, path)
