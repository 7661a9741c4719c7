"""One retraining run (the ``facelabel.retrain`` task on queue ``train``):

    configured CelebA-format folders ──▶ records (80/10/10 split by name hash: an image
    human corrections ──▶ train records     keeps its split as the data grows)
    ──▶ train the challenger (FACELABEL_TRAIN_RECIPE) ──▶ register it
    ──▶ score challenger and champion on the same held-out (test) records
    ──▶ promote when challenger macro-F1 ≥ champion macro-F1 − FACELABEL_PROMOTE_TOLERANCE

Only one run trains at a time: the caller passes a lock (the worker's Redis lease), and a
run that finds it taken ends as "skipped". Every outcome (metrics of both, the decision) is
stored on the run's row.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.models import ATTRIBUTES, ModelVersion, TrainingRun
from db.registry import activate, register_model, resolve_model
from facelabel.artifact import ArtifactError, load_artifact
from facelabel.clock import utcnow
from facelabel.errors import FacelabelError
from facelabel.settings import BUNDLED_MODEL, Settings
from trainer.annotations import convert
from trainer.corrections import write_correction_records
from trainer.evaluate import evaluate_predictions
from trainer.recipe import Recipe
from trainer.records import build_records, record_files
from trainer.train import train

log = logging.getLogger(__name__)


class Held(Protocol):
    def release(self) -> None: ...


class RetrainError(FacelabelError):
    """The run cannot start (configuration); ``str()`` says why."""


def retrain(
    sessions: sessionmaker[Session], settings: Settings, run_id: int, *, lock: Callable[[], Held | None]
) -> str:
    """Carry out run ``run_id`` while holding ``lock()`` (None: taken elsewhere); returns its
    final status."""
    with sessions() as session:
        status = session.get(TrainingRun, run_id).status
    if status != "queued":  # cancelled (`retrain cancel`) while its message waited
        return status
    lease = lock()
    if lease is None:
        _finish(sessions, run_id, "skipped", decision="another training was running")
        return "skipped"
    try:
        _update(sessions, run_id, status="running", started_at=_now())
        status, fields = _run(sessions, settings, run_id)
    except Exception as exc:
        log.exception("training run %d failed", run_id)
        status, fields = "failed", {"decision": f"failed: {type(exc).__name__}: {exc}"}
    finally:
        lease.release()
    _finish(sessions, run_id, status, **fields)
    return status


def _run(sessions: sessionmaker[Session], settings: Settings, run_id: int) -> tuple[str, dict]:
    if not settings.train_data:
        raise RetrainError("FACELABEL_TRAIN_DATA names no training data folders")
    recipe = Recipe.from_fields(settings.train_recipe, "FACELABEL_TRAIN_RECIPE")
    work = settings.train_dir / f"run-{run_id}"
    sets = _data_records(settings, work)
    train_specs = [str(r / "train") for r in sets]
    with sessions() as session:
        corrected = write_correction_records(
            session,
            work / "corrections",
            size=settings.train_size,
            framing=settings.train_framing,
            settings=settings,
        )
    if corrected:
        train_specs.append(str(work / "corrections" / "train"))
    _update(sessions, run_id, corrections=corrected)

    directory = train(
        recipe,
        train_specs=train_specs,
        val_spec=str(sets[0] / "val"),
        model_dir=settings.train_dir / "models",
        name=f"retrain-{run_id}-{_now():%Y%m%d-%H%M%S}",
    )
    held_out = [f for r in sets for f in record_files(str(r / "test"))]
    return _gate(sessions, settings, run_id, directory, held_out)


def _data_records(settings: Settings, work: Path) -> list[Path]:
    """Records of every FACELABEL_TRAIN_DATA folder, split 80/10/10 by a hash of the name."""
    work.mkdir(parents=True, exist_ok=True)
    sets = []
    for index, folder in enumerate(settings.train_data):
        selection = work / f"data{index}.json"
        convert(folder / "list_attr_celeba.txt", selection, mixed_num=10_000, seed=0)
        images = next((folder / n for n in ("images", "img_align_celeba") if (folder / n).is_dir()), folder)
        records = work / f"data{index}"
        build_records(
            selection,
            images,
            records,
            ratios=(80, 10, 10),
            size=settings.train_size,
            framing=settings.train_framing,
            stable=True,
        )
        sets.append(records)
    return sets


def _gate(
    sessions: sessionmaker[Session], settings: Settings, run_id: int, directory: Path, held_out: list[str]
) -> tuple[str, dict]:
    """Register the challenger, score it and the champion on the same held-out records, and
    promote it when it is no worse than the champion by more than the tolerance."""
    challenger_metrics = score(directory, held_out, settings.train_size)
    with sessions.begin() as session:
        champion = resolve_model(session, None, fallback=BUNDLED_MODEL)
        challenger = register_model(session, directory)
        champion_path, champion_name, champion_id = champion.path, champion.name, champion.id
        _update_in(session, run_id, challenger_id=challenger.id, champion_id=champion_id)
    try:
        champion_metrics = score(champion_path, held_out, settings.train_size)
    except (OSError, ArtifactError) as exc:
        champion_metrics = None
        log.warning("champion %s cannot be scored: %s", champion_name, exc)

    new, old = challenger_metrics["macro_f1"], champion_metrics["macro_f1"] if champion_metrics else None
    promote = old is None or new >= old - settings.promote_tolerance
    decision = (
        f"{'promoted' if promote else 'rejected'}: macro-F1 {new:.4f} vs champion {champion_name} "
        + (f"{old:.4f}" if old is not None else "(not scorable)")
        + f" on {challenger_metrics['faces']} held-out faces, tolerance {settings.promote_tolerance}"
    )
    if promote:
        with sessions.begin() as session:
            activate(session, session.get(ModelVersion, challenger.id), f"gate of training run {run_id}")
    fields = {
        "challenger_metrics": challenger_metrics,
        "champion_metrics": champion_metrics,
        "decision": decision,
    }
    return ("promoted" if promote else "rejected"), fields


def score(model_dir: str | Path, files: list[str], size: int) -> dict:
    """Metrics of the model at ``model_dir`` (its own thresholds) on record crops of ``size``
    px, resized to the model's input when it differs."""
    import tensorflow as tf

    from facelabel.vision.classifier import Classifier
    from trainer.dataset import load

    artifact = load_artifact(model_dir)
    classifier = Classifier(artifact)
    probabilities, labels = [], []
    for images, batch_labels in load(files, size=size, batch_size=64, training=False):
        if size != artifact.input_size:
            images = tf.image.resize(images, (artifact.input_size, artifact.input_size))
        pixels = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8).numpy()
        probabilities.append(classifier.predict(pixels))
        labels.append(batch_labels.numpy())
    return evaluate_predictions(
        np.concatenate(probabilities),
        np.concatenate(labels).astype(int),
        [artifact.thresholds[a] for a in ATTRIBUTES],
    )


def _now() -> dt.datetime:
    return utcnow()


def _update(sessions: sessionmaker[Session], run_id: int, **fields) -> None:
    with sessions.begin() as session:
        _update_in(session, run_id, **fields)


def _update_in(session: Session, run_id: int, **fields) -> None:
    run = session.get(TrainingRun, run_id)
    for key, value in fields.items():
        setattr(run, key, value)


def _finish(sessions: sessionmaker[Session], run_id: int, status: str, **fields) -> None:
    _update(sessions, run_id, status=status, finished_at=_now(), **fields)
