"""FaceNet rebuilt from its Keras 2 file with standard layers only: every stored tensor
loads, the model saves and loads in safe mode, and its embeddings tell CelebA's people apart."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.evaluate import roc_auc
from trainer.facenet_port import EMBEDDING, build_facenet, port, standardise

H5 = os.environ.get("FACELABEL_TEST_FACENET_H5", "build/weights/facenet_keras.h5")
pytestmark = pytest.mark.skipif(not Path(H5).is_file(), reason=f"no {H5} (make research downloads it)")


@pytest.fixture(scope="module")
def embedder():
    model = build_facenet((160, 160, 3), H5, until=EMBEDDING)
    import h5py

    with h5py.File(H5, "r") as h5:
        stored = []
        h5["model_weights"].visititems(
            lambda name, item: stored.append(name) if hasattr(item, "shape") else None
        )
    assert port(model, H5) == len(stored) == 490
    return model


def test_the_rebuilt_network_loads_in_safe_mode(embedder, tmp_path):
    import keras

    assert not [layer for layer in embedder.layers if type(layer).__name__ == "Lambda"]
    embedder.save(tmp_path / "facenet.keras")
    again = keras.saving.load_model(tmp_path / "facenet.keras", safe_mode=True)
    batch = standardise(np.random.default_rng(0).uniform(0, 255, (2, 160, 160, 3)).astype(np.float32))
    assert np.allclose(again.predict(batch, verbose=0), embedder.predict(batch, verbose=0), atol=1e-5)


def test_embeddings_tell_celeba_people_apart(embedder, celeba_dir):
    """Two images each of 60 people: same-person pairs are nearer than other pairs (a port with
    a wrong layer or weight gives a verification AUC near 0.5)."""
    folder = celeba_dir / "aligned"
    people = collections.defaultdict(list)
    for line in (folder / "identity_CelebA.txt").read_text().splitlines():
        image, person = line.split()
        people[person].append(image)
    pairs = [sorted(images)[:2] for _, images in sorted(people.items()) if len(images) >= 2][:60]
    crops = [
        np.asarray(
            Image.open(folder / "images" / name).convert("RGB").crop((9, 29, 169, 189)), dtype=np.float32
        )
        for pair in pairs
        for name in pair
    ]
    vectors = embedder.predict(standardise(np.stack(crops)), verbose=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    same = np.zeros_like(similarity, dtype=bool)
    for index in range(0, len(crops), 2):
        same[index, index + 1] = True
    upper = np.triu(np.ones_like(same), k=1).astype(bool)
    assert roc_auc(same[upper].astype(int), similarity[upper]) > 0.9
