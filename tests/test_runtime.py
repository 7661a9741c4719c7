"""The classifier on LiteRT gives Keras's probabilities, converts once per model version
into a checked cache, and lets a CPU worker label without loading TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facelabel.artifact import ArtifactError, load_artifact
from facelabel.settings import BUNDLED_MODEL, Settings
from facelabel.vision.classifier import Classifier, get_classifier
from facelabel.vision.lite_classifier import LiteClassifier
from tests import images


@pytest.fixture(scope="module")
def crops():
    """Real face crops: the examples, whole (they are aligned faces), at the model's size."""
    size = load_artifact(BUNDLED_MODEL).input_size
    paths = sorted(images.FACE.parent.glob("*.jpg"))
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in paths])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_litert_gives_the_probabilities_keras_gives(crops, cache):
    artifact = load_artifact(BUNDLED_MODEL)
    lite = LiteClassifier(artifact, cache_dir=cache, threads=2)
    assert np.abs(lite.predict(crops) - Classifier(artifact).predict(crops)).max() <= 1e-4
    assert lite.predict(crops[:1]).shape == (1, 4)  # another batch size works too
    record = json.loads(next(cache.glob("*.json")).read_text())
    assert record["keras_sha256"] == artifact.weights_sha256() and record["max_abs_difference"] <= 1e-4


def test_a_converted_model_is_reused_and_a_changed_one_refused(crops, cache):
    artifact = load_artifact(BUNDLED_MODEL)
    LiteClassifier(artifact, cache_dir=cache, threads=1)
    (flat,) = cache.glob("*.tflite")
    made = flat.stat().st_mtime_ns
    LiteClassifier(artifact, cache_dir=cache, threads=1)
    assert flat.stat().st_mtime_ns == made  # not converted again
    flat.write_bytes(flat.read_bytes()[:-1] + b"\0")
    with pytest.raises(ArtifactError, match="does not match the digest recorded"):
        LiteClassifier(artifact, cache_dir=cache, threads=1)
    flat.unlink()  # deleted: converted afresh
    assert LiteClassifier(artifact, cache_dir=cache, threads=1).predict(crops).shape == (len(crops), 4)


def test_runtime_setting_picks_the_classifier(cache):
    keras = get_classifier(str(BUNDLED_MODEL), Settings(runtime="keras", cache_dir=cache))
    lite = get_classifier(str(BUNDLED_MODEL), Settings(runtime="litert", cache_dir=cache))
    assert isinstance(keras, Classifier) and isinstance(lite, LiteClassifier)


@pytest.mark.slow
def test_a_cpu_labelling_run_does_not_load_tensorflow(tmp_path, cache):
    """Once the model is converted, YuNet + LiteRT label photos without TensorFlow (start-up
    in a second instead of several)."""
    LiteClassifier(load_artifact(BUNDLED_MODEL), cache_dir=cache, threads=1)
    images.group_photo(tmp_path / "group.jpg")
    script = (
        "import sys\n"
        "from facelabel.cli import main\n"
        "try:\n"
        f"    main(['--db', 'sqlite:///{tmp_path}/t.db', 'label', '{tmp_path}'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'no tensorflow')\n"
    )
    env = {"FACELABEL_RUNTIME": "litert", "FACELABEL_DETECTOR": "yunet", "FACELABEL_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    assert "1 images, 3 faces, 0 failures" in done.stdout
    assert done.stdout.rstrip().endswith("no tensorflow"), done.stdout
    assert done.stderr.strip() == "", done.stderr  # nothing from the native libraries either


def test_weights_changed_since_registration_are_refused(tmp_path, cache):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(BUNDLED_MODEL, copy)
    registered = load_artifact(copy).weights_sha256()
    weights = copy / "model.keras"
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="changed since it was registered"):
        get_classifier(str(copy), Settings(runtime="litert", cache_dir=cache), sha256=registered)
