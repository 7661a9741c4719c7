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

from facelabel.artifact import ATTRIBUTES, ArtifactError, ModelArtifact, load_artifact
from facelabel.settings import BUNDLED_MODEL, Settings
from facelabel.vision.classifier import get_classifier
from facelabel.vision.keras_classifier import Classifier
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


def test_a_model_for_other_attributes_is_refused_in_one_line(tmp_path):
    """The database, query, export and review all have one column per ``ATTRIBUTES`` entry,
    so a model trained for another list cannot be used."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(BUNDLED_MODEL, copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["attributes"] = [*ATTRIBUTES, "smiling"]
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"attributes must be \[.*\], got .*'smiling'") as refused:
        load_artifact(copy)
    assert "\n" not in str(refused.value)


def test_the_classifiers_width_is_the_artifacts_attribute_count(tmp_path, cache):
    """Probabilities have one column per attribute the artifact names, an empty batch too, and
    a model whose outputs do not match that count is refused."""
    import keras

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(pooled)).save(tmp_path / "model.keras")
    meta = {"name": "three", "input_size": 16, "attributes": ["a", "b", "c"], "thresholds": {}}
    three = ModelArtifact(directory=tmp_path, meta=meta)
    pixels = np.zeros((2, 16, 16, 3), np.uint8)
    for classifier in (Classifier(three), LiteClassifier(three, cache_dir=cache, threads=1)):
        assert classifier.predict(pixels).shape == (2, 3)
        assert classifier.predict(pixels[:0]).shape == (0, 3)
    four = ModelArtifact(directory=tmp_path, meta={**meta, "attributes": list(ATTRIBUTES)})
    promised = rf"gives \(None, 3\); .* promises .* -> \(None, {len(ATTRIBUTES)}\)"
    with pytest.raises(ArtifactError, match=promised):
        Classifier(four)
