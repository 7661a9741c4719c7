"""Two finished ``crossval`` runs over the same faces, compared face by face: the same person
draws for both, so a difference between recipes is not blurred by which people were drawn."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facelabel.artifact import ATTRIBUTES
from facelabel.errors import FacelabelError
from trainer.crossval import OOF, Scored, cross_fitted_thresholds, metrics, person_resamples, weighted_f1


def finished_run(parser: argparse.ArgumentParser, work: str) -> tuple[dict, set[str]]:
    """A finished ``crossval`` run's recipe and the folders it trained on, from its first fold
    model; a usage error when ``work`` holds no run with out-of-fold predictions."""
    meta = Path(work) / "folds" / "fold0" / "model.json"
    if not (Path(work) / OOF).exists() or not meta.exists():
        parser.error(f"{work} is not a crossval run with out-of-fold predictions")
    training = json.loads(meta.read_text())["training"]
    return training["recipe"], {Path(spec).parent.name for spec in training["data"]["train"]}


def same_faces(runs: list[Scored]) -> list[Scored]:
    """The runs, each in the first run's row order. Every run must have scored the same faces in
    the same folds."""
    first = runs[0]
    keys = list(zip(first.folder, first.image))
    ordered = []
    for run in runs:
        row = {key: n for n, key in enumerate(zip(run.folder, run.image))}
        if set(row) != set(keys):
            raise FacelabelError("the runs scored different faces: were they built from the same records?")
        order = [row[key] for key in keys]
        if [run.fold[i] for i in order] != first.fold or (run.labels[order] != first.labels).any():
            raise FacelabelError("the runs split the faces into different folds: compare runs of one split")
        ordered.append(
            Scored(
                first.folder, first.fold, first.person, first.image, run.probabilities[order], first.labels
            )
        )
    return ordered


def paired_difference(plain: Scored, other: Scored, trained_on, folds: int) -> list[float]:
    """Mean and 95 % interval of (other − plain) pooled macro-F1 over person resamples; both list
    the same faces in the same order."""
    if (plain.folder, plain.image) != (other.folder, other.image):
        raise ValueError("paired runs must list the same faces in the same order")
    plain_guess, other_guess = (
        (s.probabilities >= cross_fitted_thresholds(s, trained_on, folds))[trained_on].astype(int)
        for s in (plain, other)
    )
    return guess_difference(
        plain.labels[trained_on], plain_guess, other_guess, np.array(plain.person)[trained_on]
    )


def face_by_face(runs: dict[str, tuple[Scored, np.ndarray]], faces: dict[str, np.ndarray], folds: int):
    """Two runs of the same faces in one row order, each at thresholds cross-fitted on its own
    faces (``runs``: name → (run, fitted on)): per named set of ``faces``, each run's metrics,
    and the second run's macro-F1 minus the first's over the same person draws."""
    guesses, reports = [], {}
    for name, (run, fitted_on) in runs.items():
        thresholds = cross_fitted_thresholds(run, fitted_on, folds)
        guesses.append((run.probabilities >= thresholds).astype(int))
        reports[name] = {f: metrics(run.where(keep), thresholds[keep]) for f, keep in faces.items()}
    first = next(iter(runs.values()))[0]
    person = np.array(first.person)
    differences = {
        f: guess_difference(first.labels[keep], guesses[0][keep], guesses[1][keep], person[keep])
        for f, keep in faces.items()
    }
    return reports, differences


def guess_difference(labels, plain: np.ndarray, other: np.ndarray, person) -> list[float]:
    """Mean and 95 % interval of (other − plain) macro-F1 of two sets of 0/1 guesses at the same
    faces, over person resamples (the same draws for both)."""
    differences = []
    for weights in person_resamples(person):
        f1 = [
            np.mean([weighted_f1(labels[:, j], g[:, j], weights) for j in range(len(ATTRIBUTES))])
            for g in (plain, other)
        ]
        differences.append(f1[1] - f1[0])
    return [round(float(x), 4) for x in (np.mean(differences), *np.percentile(differences, [2.5, 97.5]))]
