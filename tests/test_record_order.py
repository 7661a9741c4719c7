"""Predictions over several record shards pair each face with its own name and person."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from facelabel.artifact import ATTRIBUTES
from trainer.records import serialize

SIZE = 8


def _write_shards(out: Path, shards: int, per_shard: int) -> dict[str, tuple[int, list[int]]]:
    """``fold0`` shards whose faces are flat grey at a value of their own, with labels of their
    own; returns each name's (grey value, labels)."""
    import tensorflow as tf

    from trainer.annotations import Example

    written = {}
    for shard in range(shards):
        path = out / f"fold0-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for row in range(per_shard):
                index = shard * per_shard + row
                labels = [(index >> bit) & 1 for bit in range(len(ATTRIBUTES))]
                buffer = io.BytesIO()
                Image.new("RGB", (SIZE, SIZE), (index * 10,) * 3).save(buffer, "PNG")
                name = f"{index + 1:06d}.jpg"
                writer.write(serialize(tf, Example(name, labels), buffer.getvalue()))
                written[name] = (index * 10, labels)
    return written


def _grey_model():
    """A model whose four outputs are each the face's mean pixel value."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    dense = keras.layers.Dense(len(ATTRIBUTES), use_bias=False)
    outputs = dense(keras.layers.GlobalAveragePooling2D()(inputs))
    dense.set_weights([np.full((3, len(ATTRIBUTES)), 1 / 3)])
    return keras.Model(inputs, outputs)


def test_out_of_fold_rows_pair_each_face_with_its_name_across_parallel_shards(tmp_path, monkeypatch):
    """Four shards, with training reading four at once (as on a machine with more cores): every
    row's probabilities and labels are those of the face its name and person belong to."""
    from trainer import dataset
    from trainer.crossval import predict_split

    monkeypatch.setattr(dataset, "PARALLEL_READS", 4)
    folder = tmp_path / "rec"
    folder.mkdir()
    written = _write_shards(folder, shards=4, per_shard=4)
    people = {name: f"p{index}" for index, name in enumerate(written)}
    scored = predict_split(_grey_model(), [str(folder)], "fold0", 0, people)
    assert sorted(scored.image) == sorted(written)
    for name, person, probabilities, labels in zip(
        scored.image, scored.person, scored.probabilities, scored.labels
    ):
        grey, expected = written[name]
        assert person == people[name]
        assert labels.tolist() == expected
        np.testing.assert_allclose(probabilities, grey, atol=1e-3)
