"""The large model's recipe: FaceNet frozen under a layer, the rest trained on that layer's
outputs cached beside the records, stored at float16. The cut must not change what the network
computes, the cache must serve every fold and the final model (and survive their save and
load), and the shipped file must predict what the cache predicted."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from facelabel.artifact import load_artifact
from tests import images
from tests.helpers import invoke_ok as invoke

H5 = os.environ.get("FACELABEL_TEST_FACENET_H5", "build/weights/facenet_keras.h5")
needs_facenet = pytest.mark.skipif(not Path(H5).is_file(), reason=f"no {H5} (make research downloads it)")
SIZE = 96  # the smallest round size FaceNet's valid convolutions take down to Mixed_7a


@needs_facenet
def test_the_cut_at_a_layer_computes_what_the_whole_network_does():
    from trainer.model import build_model, cache_split

    whole = build_model("facenet", input_size=SIZE, weights=H5)
    cut = build_model("facenet", input_size=SIZE, weights=H5, frozen_below="Mixed_7a")
    cut.get_layer("attributes").set_weights(whole.get_layer("attributes").get_weights())
    pixels = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    expected = whole.predict(pixels, verbose=0)
    np.testing.assert_allclose(cut.predict(pixels, verbose=0), expected, atol=1e-5)
    split = cache_split(cut)
    np.testing.assert_allclose(
        split.above.predict(split.below.predict(pixels, verbose=0), verbose=0), expected, atol=1e-5
    )
    assert cache_split(whole) is None


@needs_facenet
@pytest.mark.slow
def test_crossval_above_a_frozen_facenet_reuses_one_cache_and_ships_float16(tmp_path, sqlite_url):
    import keras

    from trainer.dataset import images_of
    from trainer.records import record_files
    from trainer.train import predict

    folder = images.synthetic_celeba(tmp_path, count=36)
    people = [f"{index + 1:06d}.jpg p{index // 2}" for index in range(36)]
    (tmp_path / "identity_CelebA.txt").write_text("\n".join(people) + "\n")
    invoke(
        "data", "convert", "--annotation", tmp_path / "list_attr_celeba.txt", "--json", tmp_path / "sel.json"
    )
    invoke(
        "data", "tfrecords", "--json", tmp_path / "sel.json", "--images", folder, "--out", tmp_path / "rec",
        "--identities", tmp_path / "identity_CelebA.txt", "--folds", 2, "--test-percent", 20, "--size", SIZE,
    )  # fmt: skip
    invoke(
        "--db", sqlite_url, "crossval", "--records", tmp_path / "rec", "--identities",
        tmp_path / "identity_CelebA.txt", "--work", tmp_path / "cv", "--name", "large", "--model", "facenet",
        "--weights", H5, "--frozen-below", "Mixed_7a", "--float16", "--epochs", 1, "--batch-size", 8,
    )  # fmt: skip
    shards = sorted(str(p) for p in (tmp_path / "rec").glob("*.tfrecord"))
    caches = sorted((tmp_path / "rec").glob("*.frozen-*.npy"))
    # one file per shard: 2 fold models and the final one, each saved and loaded back, read the same
    assert [str(c).split(".frozen-")[0] for c in caches] == shards
    assert len({c.name.split(".frozen-")[1] for c in caches}) == 1

    final = load_artifact(tmp_path / "cv" / "models" / "large")
    assert final.meta["training"]["recipe"]["frozen_below"] == "Mixed_7a"
    with zipfile.ZipFile(final.weights_path) as archive:
        stored = h5py.File(io.BytesIO(archive.read("model.weights.h5")))
        dtypes = set()
        stored.visititems(lambda _, item: dtypes.add(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert dtypes == {np.dtype("float16")}

    model = keras.saving.load_model(final.weights_path, safe_mode=True, compile=False)
    test = record_files(tmp_path / "rec" / "test")
    from_cache, _ = predict(model, test, SIZE)
    whole = model.predict(np.stack(list(images_of(test, SIZE).as_numpy_iterator())), verbose=0)
    np.testing.assert_allclose(from_cache, whole, atol=2e-3)
    report = json.loads((tmp_path / "cv" / "test.json").read_text())
    assert report["sets"]["rec"]["faces"] == len(whole)
