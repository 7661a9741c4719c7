"""One retraining run (the ``facelabel.retrain`` task on queue ``train``):

    configured CelebA-format folders ──▶ records (by person with identity_CelebA.txt, else
    human corrections ──▶ train records     by image; a face keeps its split as data grows)
    ──▶ train the challenger (FACELABEL_TRAIN_RECIPE, else the champion's own recipe and
        input size) ──▶ register it
    ──▶ score challenger and champion on the same held-out (test) records
    ──▶ promote when challenger macro-F1 ≥ champion macro-F1 − FACELABEL_PROMOTE_TOLERANCE

Split by person, the held-out people are the ones the champion's own training held out
(the same seeded person hash), so the gate compares the two on people neither trained on,
and the challenger's score is its estimate for a new person (``facelabel.estimate``).

Only one run trains at a time: the caller passes a lock (the worker's Redis lease), and a
run that finds it taken ends as "skipped". Every outcome (metrics of both, how the held-out
faces were split, the decision) is stored on the run's row.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Callable, Protocol

from sqlalchemy.orm import Session, sessionmaker

from db.models import ModelVersion, TrainingRun
from db.registry import activate, register_model, resolve_model
from facelabel.artifact import ArtifactError
from facelabel.clock import utcnow
from facelabel.errors import FacelabelError
from facelabel.estimate import BY_IMAGE
from facelabel.settings import BUNDLED_MODEL, Settings
from trainer.corrections import write_correction_records
from trainer.held_out import (
    DEFAULT_PEOPLE_HASH,
    IDENTITIES,
    FolderRecords,
    folder_records,
    held_out_people,
    score,
)
from trainer.recipe import Recipe, recipe_of
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
    except FacelabelError as exc:  # configuration or data: the decision says what to change
        log.warning("training run %d failed: %s", run_id, exc)
        status, fields = "failed", {"decision": f"failed: {exc}"}
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
    with sessions.begin() as session:
        champion = resolve_model(session, None, fallback=BUNDLED_MODEL)
        name, meta, input_size = champion.name, champion.meta, champion.input_size
    recipe, size = challenger_recipe(settings, name, meta, input_size)
    work = settings.train_dir / f"run-{run_id}"
    people_hash = held_out_people(meta) or DEFAULT_PEOPLE_HASH
    sets = [
        folder_records(settings, folder, work / f"data{i}", size, people_hash)
        for i, folder in enumerate(settings.train_data)
    ]
    train_specs = [spec for s in sets for spec in s.train]
    with sessions() as session:
        corrected = write_correction_records(
            session, work / "corrections", size=size, framing=settings.train_framing, settings=settings
        )
    if corrected:
        train_specs.append(str(work / "corrections" / "train"))
    _update(sessions, run_id, corrections=corrected)

    directory = train(
        recipe,
        train_specs=train_specs,
        val_spec=sets[0].val,
        model_dir=settings.train_dir / "models",
        name=f"retrain-{run_id}-{_now():%Y%m%d-%H%M%S}",
    )
    return _gate(sessions, settings, run_id, directory, (sets, size, people_hash))


def challenger_recipe(settings: Settings, name: str, meta: dict, input_size: int) -> tuple[Recipe, int]:
    """What the challenger trains and at which crop size: FACELABEL_TRAIN_RECIPE when set
    (at FACELABEL_TRAIN_SIZE), else the champion's own recipe at its input size (or at
    FACELABEL_TRAIN_SIZE when that is set), so that it can match what it must beat."""
    if settings.train_recipe:
        return Recipe.from_fields(settings.train_recipe, "FACELABEL_TRAIN_RECIPE"), settings.train_size
    size = settings.train_size if "train_size" in settings.model_fields_set else input_size
    return recipe_of(meta, f"the champion {name}"), size


def _gate(
    sessions: sessionmaker[Session],
    settings: Settings,
    run_id: int,
    directory: Path,
    held_out: tuple[list[FolderRecords], int, tuple[int, int]],
) -> tuple[str, dict]:
    """Register the challenger, score it and the champion on the same held-out records (the
    sets, their crop size, the person hash that held people out), and promote it when it is
    no worse than the champion by more than the tolerance."""
    sets, size, people_hash = held_out
    challenger_metrics = score(directory, sets, size)
    with sessions.begin() as session:
        champion = resolve_model(session, None, fallback=BUNDLED_MODEL)
        challenger = register_model(session, directory)
        champion_path, champion_name, champion_meta = champion.path, champion.name, champion.meta
        _update_in(session, run_id, challenger_id=challenger.id, champion_id=champion.id)
    try:
        champion_metrics = score(champion_path, sets, size)
    except (OSError, ArtifactError) as exc:
        champion_metrics = None
        log.warning("champion %s cannot be scored: %s", champion_name, exc)

    new, old = challenger_metrics["macro_f1"], champion_metrics["macro_f1"] if champion_metrics else None
    promote = old is None or new >= old - settings.promote_tolerance
    decision = (
        f"{'promoted' if promote else 'rejected'}: macro-F1 {new:.4f} vs champion {champion_name} "
        + (f"{old:.4f}" if old is not None else "(not scorable)")
        + f" on {_held_out(challenger_metrics, settings, sets, people_hash, champion_meta)}"
        + f", tolerance {settings.promote_tolerance}"
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


def _held_out(
    metrics: dict, settings: Settings, sets: list[FolderRecords], people_hash, champion_meta
) -> str:
    """The gate's faces, said plainly: split by person or by image, and whether the champion
    may have trained on them."""
    if metrics["split"] == BY_IMAGE:
        lacking = ", ".join(str(f) for f, s in zip(settings.train_data, sets) if s.people is None)
        return (
            f"{metrics['faces']} held-out faces split by image (no {IDENTITIES} in {lacking}), so the "
            "same person can be in training and held out"
        )
    said = f"{metrics['faces']} faces of {metrics['people']} people held out by person"
    if held_out_people(champion_meta) == people_hash:
        return f"{said}, whom neither model trained on"
    return f"{said}; the champion's training was not split by these people, so it may have trained on them"


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
