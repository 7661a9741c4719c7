"""The frozen part of a model run once per record shard, its outputs cached beside the shard.

A model built with ``Recipe.frozen_below`` trains only above that layer, so the part below
maps an image to the same features every epoch. They are computed once per shard, for the
image itself and for one augmented view of it (``dataset.augment``: mirror, zoom, shift,
colour jitter: training draws one of the two each epoch, prediction reads the first), and
stored as float16 in ``<shard>.frozen-<key>.npy``. The key hashes the frozen weights and the
crop size, so a cache never outlives the weights that made it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

VIEWS = 2  # the image and one augmented view


def weights_key(below, size: int) -> str:
    """Hash of the frozen part's weights and the crop size (16 hex digits)."""
    digest = hashlib.sha256(str(size).encode())
    for array in below.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _compute(below, shard: str, size: int) -> np.ndarray:
    import tensorflow as tf

    from trainer.dataset import augment, images_of

    rows = []
    for batch in images_of([shard], size).batch(64):
        seen = [batch] + [tf.map_fn(lambda image: augment(image, 0.0)[0], batch) for _ in range(VIEWS - 1)]
        outputs = [below.predict_on_batch(view) for view in seen]
        rows.append(np.stack(outputs, axis=1).astype(np.float16))
    return np.concatenate(rows)


def features(below, files: list[str], size: int, *, compute: bool = True, say=print) -> np.ndarray | None:
    """(images, VIEWS, *feature shape) float16 for every record of the shards, in record order;
    without ``compute``, None unless every shard already has its cache."""
    key = weights_key(below, size)
    paths = [Path(f"{shard}.frozen-{key}.npy") for shard in files]
    if not compute and not all(path.exists() for path in paths):
        return None
    parts = []
    for shard, cached in zip(files, paths):
        if not cached.exists():
            say(f"frozen features of {shard}")
            partial = cached.with_suffix(".partial.npy")
            np.save(partial, _compute(below, shard, size))
            partial.replace(cached)
        parts.append(np.load(cached, mmap_mode="r"))
    return np.concatenate(parts)
