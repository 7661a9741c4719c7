"""Training: head on a frozen backbone (the seed's method), then optional fine-tuning;
thresholds calibrated on val; the result saved as a model artifact with its metadata.

Resumable: each phase checkpoints every epoch (Keras BackupAndRestore); run the same
command again after an interruption and it continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from facelabel.artifact import ATTRIBUTES
from trainer import dataset
from trainer.evaluate import best_thresholds, evaluate_predictions
from trainer.model import BACKBONES, build_model, save_artifact, unfreeze
from trainer.records import read_manifest, record_files


@dataclasses.dataclass(frozen=True)
class Recipe:
    backbone: str = "mobilenet"
    weights: str | None = "imagenet"
    alpha: float = 0.25
    epochs: int = 40
    lr: float = 1e-4
    fine_tune: bool = False
    fine_tune_epochs: int = 10
    fine_tune_lr: float = 1e-5
    unfreeze_fraction: float = 1.0
    batch_size: int = 32
    patience: int = 5
    positive_weight_cap: float = 10.0
    seed: int = 0


def positive_weights(labels: np.ndarray, cap: float) -> np.ndarray:
    """Per-attribute weight on positive examples: sqrt(negatives / positives), capped.

    Attributes are 3–7 % positive; unweighted BCE lets the model say "no" to everything.
    """
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    return np.clip(np.sqrt(negatives / np.maximum(positives, 1)), 1.0, cap).astype("float32")


def weighted_bce(weights: np.ndarray):
    import keras
    from keras import ops

    weights = ops.convert_to_tensor(weights)

    def loss(y_true, y_pred):
        y_pred = ops.clip(y_pred, keras.config.epsilon(), 1 - keras.config.epsilon())
        per_label = -(weights * y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
        return ops.mean(per_label, axis=-1)

    return loss


def _fit(model, train, val, *, epochs, lr, loss, patience, directory: Path, phase: str) -> dict:
    import keras

    done = directory / f"{phase}.done.json"
    best = directory / f"{phase}.best.weights.h5"
    if done.exists():  # finished in an earlier, interrupted run
        model.load_weights(str(best))
        return json.loads(done.read_text())
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=loss,
        metrics=[keras.metrics.AUC(multi_label=True, num_labels=len(ATTRIBUTES), name="auc")],
    )
    callbacks = [
        keras.callbacks.BackupAndRestore(str(directory / f"{phase}.backup")),
        keras.callbacks.ModelCheckpoint(
            str(best), monitor="val_auc", mode="max", save_best_only=True, save_weights_only=True
        ),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_auc", mode="max", factor=0.3, patience=max(1, patience // 2)
        ),
        keras.callbacks.CSVLogger(str(directory / f"{phase}.history.csv"), append=True),
    ]
    started = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=2)
    seconds = time.perf_counter() - started
    model.load_weights(str(best))
    info = {
        "epochs": len(history.history.get("loss", [])),
        "seconds": round(seconds, 1),
        "history": history.history,
    }
    done.write_text(json.dumps(info, default=float))
    return info


HISTORY = "history.json"


def load_history(directory: str | Path) -> dict | None:
    """Per-phase Keras histories of the model in ``directory``, if it was trained here."""
    path = Path(directory) / "training" / HISTORY
    return json.loads(path.read_text()) if path.exists() else None


def predict(model, files: list[str], size: int, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) over the shards, in record order."""
    data = dataset.load(files, size=size, batch_size=batch_size, training=False)
    probabilities, labels = [], []
    for images, batch_labels in data:
        probabilities.append(model.predict_on_batch(images))
        labels.append(batch_labels.numpy())
    return np.concatenate(probabilities), np.concatenate(labels).astype(int)


def train(
    recipe: Recipe, *, train_specs: list[str], val_spec: str, model_dir: str | Path, name: str | None = None
) -> Path:
    """Train per ``recipe`` and save the artifact under ``model_dir/<name>``; returns its path."""
    import keras

    keras.utils.set_random_seed(recipe.seed)
    sources = [(spec, record_files(spec)) for spec in train_specs]
    val_files = record_files(val_spec)
    manifests = {spec: read_manifest(files) for spec, files in sources}
    val_manifest = read_manifest(val_files)
    size, framing = val_manifest["size"], val_manifest["framing"]
    for spec, manifest in manifests.items():
        if (manifest["size"], manifest["framing"]) != (size, framing):
            raise ValueError(
                f"{spec} holds {manifest['size']}px {manifest['framing']} crops; val holds {size}px {framing}"
            )
    train_files = [f for _, files in sources for f in files]
    train_images = sum(m["splits"]["train"]["images"] for m in manifests.values())
    name = name or f"{recipe.backbone}-{size}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}"
    directory = Path(model_dir) / name
    work = directory / "training"
    work.mkdir(parents=True, exist_ok=True)

    train_labels = dataset.labels_of(train_files, size).numpy()
    weights = positive_weights(train_labels, recipe.positive_weight_cap)
    train_data = dataset.load(
        train_files, size=size, batch_size=recipe.batch_size, training=True, seed=recipe.seed
    )
    val_data = dataset.load(val_files, size=size, batch_size=64, training=False)
    model = build_model(recipe.backbone, input_size=size, weights=recipe.weights, alpha=recipe.alpha)
    loss = weighted_bce(weights)

    phases = {}
    phases["head"] = _fit(
        model,
        train_data,
        val_data,
        epochs=recipe.epochs,
        lr=recipe.lr,
        loss=loss,
        patience=recipe.patience,
        directory=work,
        phase="head",
    )
    if recipe.fine_tune:
        trainable = unfreeze(model, fraction=recipe.unfreeze_fraction)
        phases["fine_tune"] = _fit(
            model,
            train_data,
            val_data,
            epochs=recipe.fine_tune_epochs,
            lr=recipe.fine_tune_lr,
            loss=loss,
            patience=recipe.patience,
            directory=work,
            phase="fine_tune",
        )
        phases["fine_tune"]["trainable_backbone_layers"] = trainable

    val_probabilities, val_labels = predict(model, val_files, size)
    thresholds = best_thresholds(val_probabilities, val_labels)
    metrics = evaluate_predictions(val_probabilities, val_labels, thresholds)
    images_per_second = {
        phase: round(train_images * info["epochs"] / info["seconds"], 1)
        for phase, info in phases.items()
        if info["seconds"]
    }
    (work / HISTORY).write_text(json.dumps({p: i["history"] for p, i in phases.items()}, default=float))
    meta = {
        "name": name,
        "backbone": recipe.backbone,
        "alpha": recipe.alpha if BACKBONES[recipe.backbone][2] else None,
        "input_size": size,
        "framing": framing,
        "attributes": list(ATTRIBUTES),
        "preprocessing": f"inside the model: {BACKBONES[recipe.backbone][1]} (raw RGB 0-255 in)",
        "thresholds": {a: round(float(t), 4) for a, t in zip(ATTRIBUTES, thresholds)},
        "thresholds_from": "validation split, per attribute, maximising F1",
        "metrics": {"val": metrics},
        "training": {
            "recipe": dataclasses.asdict(recipe),
            "positive_weights": {a: round(float(w), 3) for a, w in zip(ATTRIBUTES, weights)},
            "phases": {p: {k: v for k, v in i.items() if k != "history"} for p, i in phases.items()},
            "train_images_per_second": images_per_second,
            "data": {
                "train": manifests,
                "val": {val_spec: val_manifest},
                "train_images": train_images,
                "train_positives": {a: int(v) for a, v in zip(ATTRIBUTES, train_labels.sum(axis=0))},
                "manifests_sha256": hashlib.sha256(
                    json.dumps([manifests, val_manifest], sort_keys=True).encode()
                ).hexdigest(),
            },
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "host_cpus": os.cpu_count(),
        },
    }
    save_artifact(model, directory, meta)
    return directory
