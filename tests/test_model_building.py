"""Backbones build with their preprocessing inside, and a saved model reloads in safe mode
with the same outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from facelabel.artifact import ATTRIBUTES
from trainer.facenet_port import standardise
from trainer.model import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, build_model, preprocessing, unfreeze

FACENET_H5 = os.environ.get("FACELABEL_TEST_FACENET_H5", "build/weights/facenet_keras.h5")


def test_preprocessing_layers_match_keras_applications():
    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    apps = keras.applications
    np.testing.assert_allclose(
        preprocessing("tf")(pixels), apps.mobilenet.preprocess_input(pixels.copy()), atol=1e-5
    )
    np.testing.assert_allclose(
        preprocessing("caffe")(pixels), apps.resnet50.preprocess_input(pixels.copy()), atol=1e-3
    )
    torch_style = (pixels / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(preprocessing("torch")(pixels), torch_style, atol=1e-4)
    np.testing.assert_allclose(preprocessing("standardise")(pixels), standardise(pixels), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_saves_and_reloads_in_safe_mode(backbone, tmp_path):
    weights = None
    if backbone == "facenet":  # built from its own file
        if not Path(FACENET_H5).is_file():
            pytest.skip(f"no {FACENET_H5} (make research downloads it)")
        weights = FACENET_H5
    model = build_model(backbone, input_size=96, weights=weights)
    assert model.output_shape == (None, len(ATTRIBUTES))
    assert not any(w.trainable for w in model.layers[2].weights)  # backbone frozen by default
    pixels = np.random.default_rng(1).uniform(0, 255, size=(2, 96, 96, 3)).astype("float32")
    expected = model.predict(pixels, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), expected, atol=1e-5)


def test_unfreeze_keeps_batchnorm_frozen():
    model = build_model("mobilenet", input_size=64, weights=None)
    trainable = unfreeze(model, fraction=0.5)
    base = model.layers[2]
    assert 0 < trainable < len(base.layers)
    assert not any(
        layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert any(layer.trainable for layer in base.layers[-10:])


@pytest.mark.parametrize(
    "options, reason",
    [
        (["--model", "nope"], "Error: unknown backbone 'nope'; choose from mobilenet, mobilenetv2,"),
        (["--model", "mobilenetv2-torch"], "Error: mobilenetv2-torch has no Keras download: port its"),
        (["--weights", "/no/such.h5"], "Error: weights file not found: /no/such.h5"),
        (["--model", "facenet"], "Error: facenet builds from FaceNet's own file: pass --weights"),
        (["--frozen-below", "Mixed_7a"], "Error: --frozen-below needs --model facenet"),
        (["--ema", "1"], "Error: --ema must be between 0 and 1 (exclusive), not 1.0"),
        (["--low-res", "0"], "Error: --low-res must be a probability above 0, not 0.0"),
    ],
)
def test_train_refuses_a_recipe_it_cannot_train_before_loading_tensorflow(tmp_path, options, reason):
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from facelabel.cli import main\n"
        f"args = ['--db', 'sqlite:///{tmp_path}/x.db', 'train', '--train-tfrecord', 'r/train', "
        f"'--val-tfrecord', 'r/val', '--model-dir', '{tmp_path}', *{options!r}]\n"
        "result = CliRunner().invoke(main, args)\n"
        "print(result.exit_code, result.output, end='')\n"
        "print('tensorflow loaded' if 'tensorflow' in sys.modules else '')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    code, output = done.stdout.split(" ", 1)
    assert code == "1" and output.startswith(reason) and output.count("\n") == 2, done.stdout
    assert "tensorflow loaded" not in output
