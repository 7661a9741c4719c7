"""Training: head on a frozen backbone (the seed's method), then optional fine-tuning;
thresholds calibrated on val; the result saved as a model artifact with its metadata.

Resumable: each phase checkpoints every epoch (Keras BackupAndRestore); run the same
command again after an interruption and it continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from facelabel.artifact import ATTRIBUTES
from facelabel.clock import utcnow
from trainer import dataset, feature_cache
from trainer.evaluate import best_thresholds, evaluate_predictions
from trainer.model import BACKBONES, build_model, cache_split, save_artifact, unfreeze
from trainer.recipe import Recipe
from trainer.records import RecordsError, read_manifest, record_files


def positive_weights(labels: np.ndarray, cap: float) -> np.ndarray:
    """Per-attribute weight on positive examples: sqrt(negatives / positives), capped.

    Attributes are 3–7 % positive; unweighted BCE lets the model say "no" to everything.
    """
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    return np.clip(np.sqrt(negatives / np.maximum(positives, 1)), 1.0, cap).astype("float32")


def weighted_bce(weights: np.ndarray, smoothing: float = 0.0, gamma: float = 0.0):
    """Binary cross-entropy with ``weights`` on positives, each target moved ``smoothing`` toward 0.5;
    with ``gamma`` above 0 the focal loss: each term scaled by (1 - p)**gamma for the side it
    rewards, so faces the model already gets right weigh little."""
    import keras
    from keras import ops

    weights = ops.convert_to_tensor(weights)

    def loss(y_true, y_pred):
        y_true = y_true * (1 - smoothing) + 0.5 * smoothing
        y_pred = ops.clip(y_pred, keras.config.epsilon(), 1 - keras.config.epsilon())
        positive = weights * y_true * ops.log(y_pred)
        negative = (1 - y_true) * ops.log(1 - y_pred)
        if gamma:
            positive = positive * (1 - y_pred) ** gamma
            negative = negative * y_pred**gamma
        return ops.mean(-(positive + negative), axis=-1)

    return loss


def _fit(
    model,
    train,
    val,
    *,
    epochs,
    steps,
    lr,
    loss,
    patience,
    directory: Path,
    phase: str,
    ema: float | None = None,
) -> dict:
    """One phase; with ``patience`` None it runs every epoch and keeps the last weights (val is
    only measured), else val picks the best epoch, stops early and lowers the learning rate.
    With ``ema`` (a momentum) the weights kept, measured and checkpointed are Adam's exponential
    moving average of them, not the last step's."""
    import keras

    done = directory / f"{phase}.done.json"
    best = directory / f"{phase}.best.weights.h5"
    if done.exists():  # finished in an earlier, interrupted run
        model.load_weights(str(best))
        return json.loads(done.read_text())
    model.compile(
        optimizer=keras.optimizers.Adam(lr, use_ema=ema is not None, ema_momentum=ema or 0.99),
        loss=loss,
        metrics=[keras.metrics.AUC(multi_label=True, num_labels=len(ATTRIBUTES), name="auc")],
    )
    callbacks = _callbacks(directory, phase, best, patience=patience, ema=ema)
    started = time.perf_counter()
    history = model.fit(
        train, validation_data=val, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=2
    )
    seconds = time.perf_counter() - started
    if patience is None:
        model.save_weights(str(best))
    model.load_weights(str(best))
    info = {
        "epochs": len(history.history.get("loss", [])),
        "seconds": round(seconds, 1),
        "history": history.history,
    }
    done.write_text(json.dumps(info, default=float))
    return info


def _callbacks(directory: Path, phase: str, best: Path, *, patience: int | None, ema: float | None) -> list:
    """A phase's checkpoint for resuming and its CSV log; with ``ema``, the averaged weights
    swapped in for validation; with ``patience``, val's best epoch kept, early stopping and a
    learning rate lowered on plateaus."""
    import keras

    callbacks = [
        keras.callbacks.BackupAndRestore(str(directory / f"{phase}.backup")),
        keras.callbacks.CSVLogger(str(directory / f"{phase}.history.csv"), append=True),
    ]
    if ema is not None:  # validate (and checkpoint) the averaged weights; fit ends on them
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if patience is not None:
        callbacks += [
            keras.callbacks.ModelCheckpoint(
                str(best), monitor="val_auc", mode="max", save_best_only=True, save_weights_only=True
            ),
            keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_auc", mode="max", factor=0.3, patience=max(1, patience // 2)
            ),
        ]
    return callbacks


HISTORY = "history.json"
VAL_THRESHOLDS = "validation split, per attribute, maximising F1"


def load_history(directory: str | Path) -> dict | None:
    """Per-phase Keras histories of the model in ``directory``, if it was trained here."""
    path = Path(directory) / "training" / HISTORY
    return json.loads(path.read_text()) if path.exists() else None


def predict(model, files: list[str], size: int, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) over the shards, in record order; a model with a frozen part
    reads that part's outputs from the shards' feature cache where training left one (else it
    runs whole, and writes nothing beside the shards)."""
    split = cache_split(model)
    frozen = split and feature_cache.features(split.below, files, size, compute=False)
    if frozen is not None:
        probabilities = split.above.predict(frozen[:, 0].astype("float32"), batch_size=batch_size, verbose=0)
        return probabilities, dataset.labels_of(files, size).numpy().astype(int)
    data = dataset.load(files, size=size, batch_size=batch_size, training=False)
    probabilities, labels = [], []
    for images, batch_labels in data:
        probabilities.append(model.predict_on_batch(images))
        labels.append(batch_labels.numpy())
    return np.concatenate(probabilities), np.concatenate(labels).astype(int)


def train(
    recipe: Recipe,
    *,
    train_specs: list[str],
    val_spec: str,
    model_dir: str | Path,
    name: str | None = None,
    thresholds: tuple[list[float], str] | None = None,
) -> Path:
    """Train per ``recipe`` and save the artifact under ``model_dir/<name>``; returns its path.
    ``thresholds`` (values, where they come from) replace the ones chosen on val."""
    import keras

    keras.utils.set_random_seed(recipe.seed)
    data = _TrainingData.read(train_specs, val_spec)
    name = name or f"{recipe.backbone}-{data.size}-{utcnow():%Y%m%d-%H%M%S}"
    directory = Path(model_dir) / name
    work = directory / "training"
    work.mkdir(parents=True, exist_ok=True)

    train_labels = dataset.labels_of(data.train_files, data.size).numpy()
    weights = positive_weights(train_labels, recipe.positive_weight_cap)
    model = build_model(
        recipe.backbone,
        input_size=data.size,
        weights=recipe.weights,
        alpha=recipe.alpha,
        frozen_below=recipe.frozen_below,
        float16=recipe.float16,
    )
    loss = weighted_bce(weights, recipe.label_smoothing, recipe.focal_gamma)
    phases = _fit_phases(model, recipe, data, loss, work)

    val_probabilities, val_labels = predict(model, data.val_files, data.size)
    chosen, source = thresholds or (best_thresholds(val_probabilities, val_labels), VAL_THRESHOLDS)
    metrics = evaluate_predictions(val_probabilities, val_labels, chosen)
    (work / HISTORY).write_text(json.dumps({p: i["history"] for p, i in phases.items()}, default=float))
    meta = _metadata(name, recipe, data, (chosen, source), metrics, phases, weights, train_labels)
    save_artifact(model, directory, meta, float16=recipe.float16)
    return directory


@dataclasses.dataclass(frozen=True)
class _TrainingData:
    """The record shards of one training: every set of the same crop size. Framings may mix (whole
    aligned images with detector crops of photos, which a worker frames alike); the model's own
    framing is its val set's, and the card names the training sets of another."""

    train_files: list[str]
    val_files: list[str]
    manifests: dict[str, dict]  # train spec → its manifest
    val_manifest: dict
    val_spec: str

    @classmethod
    def read(cls, train_specs: list[str], val_spec: str) -> "_TrainingData":
        sources = [(spec, record_files(spec)) for spec in train_specs]
        val_files = record_files(val_spec)
        manifests = {spec: read_manifest(files) for spec, files in sources}
        val_manifest = read_manifest(val_files)
        for spec, manifest in manifests.items():
            if manifest["size"] != val_manifest["size"]:
                raise RecordsError(
                    f"{spec} holds {manifest['size']}px crops; val holds {val_manifest['size']}px"
                )
        train_files = [f for _, files in sources for f in files]
        return cls(train_files, val_files, manifests, val_manifest, val_spec)

    @property
    def size(self) -> int:
        return self.val_manifest["size"]

    @property
    def framing(self) -> str:
        return self.val_manifest["framing"]


def _fit_phases(model, recipe: Recipe, data: _TrainingData, loss, work: Path) -> dict[str, dict]:
    """The head on the frozen backbone, then (``recipe.fine_tune``) the unfrozen backbone; a
    model with a frozen part trains the rest on that part's cached outputs."""
    split = cache_split(model)
    if split is None:
        trained = model
        train_data = dataset.load(
            data.train_files,
            size=data.size,
            batch_size=recipe.batch_size,
            training=True,
            seed=recipe.seed,
            low_res=recipe.low_res,
        )
        val_data = dataset.load(data.val_files, size=data.size, batch_size=64, training=False)
    else:
        trained = split.above
        train_data, val_data = _cached_data(split.below, recipe, data)
    patience = None if recipe.fixed_epochs else recipe.patience
    if recipe.steps_per_epoch:
        train_data = train_data.repeat()
    fit = functools.partial(
        _fit,
        trained,
        train_data,
        val_data,
        steps=recipe.steps_per_epoch,
        loss=loss,
        patience=patience,
        directory=work,
        ema=recipe.ema_momentum,
    )
    phases = {"head": fit(epochs=recipe.epochs, lr=recipe.lr, phase="head")}
    if recipe.fine_tune:
        trainable = unfreeze(model, fraction=recipe.unfreeze_fraction)
        phases["fine_tune"] = fit(epochs=recipe.fine_tune_epochs, lr=recipe.fine_tune_lr, phase="fine_tune")
        phases["fine_tune"]["trainable_backbone_layers"] = trainable
    return phases


def _cached_data(below, recipe: Recipe, data: _TrainingData):
    """Training batches of cached frozen features, one of each image's views drawn at random
    every epoch; validation batches of the images themselves."""
    import tensorflow as tf

    train = feature_cache.features(below, data.train_files, data.size)
    labels = dataset.labels_of(data.train_files, data.size)
    views = tf.data.Dataset.from_tensor_slices((np.asarray(train), labels)).shuffle(
        len(train), seed=recipe.seed, reshuffle_each_iteration=True
    )

    def one_view(x, y):
        return tf.cast(x[tf.random.uniform([], 0, tf.shape(x)[0], tf.int32)], tf.float32), y

    train_data = views.map(one_view, num_parallel_calls=dataset.AUTOTUNE).batch(recipe.batch_size).prefetch(2)
    val = feature_cache.features(below, data.val_files, data.size)[:, 0]
    val_data = tf.data.Dataset.from_tensor_slices(
        (np.asarray(val, np.float32), dataset.labels_of(data.val_files, data.size))
    ).batch(64)
    return train_data, val_data


def _metadata(name, recipe, data: _TrainingData, thresholds, metrics, phases, weights, train_labels) -> dict:
    """The model card's raw material, stored in ``model.json`` beside the weights."""
    backbone = BACKBONES[recipe.backbone]
    (values, source), train_images = thresholds, len(train_labels)
    per_epoch = recipe.steps_per_epoch * recipe.batch_size if recipe.steps_per_epoch else train_images
    return {
        "name": name,
        "backbone": recipe.backbone,
        "alpha": recipe.alpha if backbone.takes_alpha else None,
        "input_size": data.size,
        "framing": data.framing,
        "attributes": list(ATTRIBUTES),
        "preprocessing": f"inside the model: {backbone.preprocessing} (raw RGB 0-255 in)",
        "thresholds": {a: round(float(t), 4) for a, t in zip(ATTRIBUTES, values)},
        "thresholds_from": source,
        "metrics": {"val": metrics},
        "training": {
            "recipe": dataclasses.asdict(recipe),
            "positive_weights": {a: round(float(w), 3) for a, w in zip(ATTRIBUTES, weights)},
            "phases": {p: {k: v for k, v in i.items() if k != "history"} for p, i in phases.items()},
            "train_images_per_second": {
                phase: round(per_epoch * info["epochs"] / info["seconds"], 1)
                for phase, info in phases.items()
                if info["seconds"]
            },
            "data": {
                "train": data.manifests,
                "val": {data.val_spec: data.val_manifest},
                "train_images": train_images,
                "train_positives": {a: int(v) for a, v in zip(ATTRIBUTES, train_labels.sum(axis=0))},
                "manifests_sha256": hashlib.sha256(
                    json.dumps([data.manifests, data.val_manifest], sort_keys=True).encode()
                ).hexdigest(),
            },
            "finished": utcnow().isoformat(timespec="seconds"),
            "host_cpus": os.cpu_count(),
        },
    }
