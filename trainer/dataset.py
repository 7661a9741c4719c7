"""tf.data input pipeline over the record shards: parallel reads and decode, an in-memory
cache, shuffling, light augmentation on the training split, prefetch."""

from __future__ import annotations

import tensorflow as tf

from facelabel.artifact import ATTRIBUTES
from trainer.recipe import LOW_RES_SCALE

AUTOTUNE = tf.data.AUTOTUNE
PARALLEL_READS = AUTOTUNE  # shards read at once while training; their records interleave


def _parse(size: int):
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.FixedLenFeature([len(ATTRIBUTES)], tf.int64),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_png(example["image"], channels=3)
        image = tf.ensure_shape(image, [size, size, 3])
        return tf.cast(image, tf.float32), tf.cast(example["labels"], tf.float32)

    return parse


def augment(image, labels, low_res: float | None = None):
    """Mirror, a mild random zoom and shift, and brightness/contrast/saturation jitter; with
    probability ``low_res``, the face first shrunk to a fraction of its side (``LOW_RES_SCALE``)
    and scaled back up, as a low-resolution photo's face reaches the crop size."""
    size = tf.shape(image)[0]
    if low_res:
        image = tf.cond(tf.random.uniform([]) < low_res, lambda: _shrunk(image, size), lambda: image)
    image = tf.image.random_flip_left_right(image)
    scale = tf.random.uniform([], 0.88, 1.0)
    crop = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
    image = tf.image.random_crop(image, tf.stack([crop, crop, 3]))
    image = tf.image.resize(image, tf.stack([size, size]), method="bilinear")
    image = tf.image.random_brightness(image, 0.15 * 255)
    image = tf.image.random_contrast(image, 0.8, 1.2)
    image = tf.image.random_saturation(image, 0.8, 1.2)
    return tf.clip_by_value(image, 0.0, 255.0), labels


def _shrunk(image, size):
    side = tf.cast(tf.cast(size, tf.float32) * tf.random.uniform([], *LOW_RES_SCALE), tf.int32)
    small = tf.image.resize(image, tf.stack([side, side]), method="area", antialias=True)
    return tf.image.resize(small, tf.stack([size, size]), method="bilinear")


def load(
    files: list[str],
    *,
    size: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    low_res: float | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 pixels 0–255, float32 labels); ``training`` reads the shards in
    parallel, shuffles and augments (``low_res``: see ``augment``); otherwise the batches hold
    the records in record order, row for row with ``names_of`` and ``labels_of``."""
    reads = PARALLEL_READS if training else None
    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=reads)
    dataset = dataset.map(_parse(size), num_parallel_calls=AUTOTUNE).cache()
    if training:
        dataset = dataset.shuffle(20_000, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.map(lambda x, y: augment(x, y, low_res), num_parallel_calls=AUTOTUNE)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def images_of(files: list[str], size: int) -> tf.data.Dataset:
    """Every image of the shards (float32 pixels 0–255), in record order."""
    return tf.data.TFRecordDataset(files).map(_parse(size)).map(lambda image, labels: image)


def labels_of(files: list[str], size: int) -> tf.Tensor:
    """All labels of the shards, in record order (for class weights and calibration)."""
    dataset = tf.data.TFRecordDataset(files).map(_parse(size)).map(lambda image, labels: labels)
    return tf.concat(list(dataset.batch(4096)), axis=0)


def names_of(files: list[str]) -> list[str]:
    """The image name of every record, in record order."""
    spec = {"name": tf.io.FixedLenFeature([], tf.string)}
    dataset = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)["name"])
    return [name.decode() for batch in dataset.batch(4096) for name in batch.numpy()]
