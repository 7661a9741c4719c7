"""Identity-grouped k-fold cross-validation of a recipe, then the final model.

Record folders built with ``data tfrecords --identities … --folds K`` hold ``fold0`` …
``fold{K-1}`` and ``test``, split by person (the same person in the same split in every
folder). For each fold the recipe trains on the other folds, with fixed epochs so the held-out
fold chooses nothing, and predicts the held-out fold of every folder (score-only folders too,
e.g. in-the-wild photos cropped by the detector): out-of-fold probabilities for every image.
Each fold is scored at thresholds chosen on the *other* folds' out-of-fold predictions, and
intervals resample people, not images. The final model trains on every fold with thresholds
from all out-of-fold predictions, for as many batches as a fold model; the ``test`` people
are scored once, by that model only.
Score-only photos, which no model trained on, check that the shipped model reads those
thresholds as the fold models did (``shipped_model`` in the report).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from facelabel.artifact import ATTRIBUTES
from facelabel.estimate import CROSSVAL_REPORT, POOLED
from trainer.evaluate import best_thresholds, binary_metrics, f1_score, roc_auc
from trainer.recipe import Recipe
from trainer.records import RecordsError, read_manifest, record_files

OOF = "oof.jsonl"
REPORT = CROSSVAL_REPORT.name
TEST = "test.json"
ROUNDS = 1000


@dataclasses.dataclass
class Scored:
    """Predictions for a set of faces: which folder, fold and person each came from."""

    folder: list[str]
    fold: list[int]
    person: list[str]
    image: list[str]
    probabilities: np.ndarray
    labels: np.ndarray

    def where(self, keep: np.ndarray) -> "Scored":
        pick = np.flatnonzero(keep)
        return Scored(
            *([getattr(self, f)[i] for i in pick] for f in ("folder", "fold", "person", "image")),
            self.probabilities[pick],
            self.labels[pick],
        )

    def rows(self) -> list[dict]:
        return [
            {
                "folder": self.folder[i],
                "fold": self.fold[i],
                "person": self.person[i],
                "image": self.image[i],
                "labels": self.labels[i].tolist(),
                "probabilities": [round(float(p), 6) for p in self.probabilities[i]],
            }
            for i in range(len(self.image))
        ]

    @classmethod
    def from_rows(cls, rows: list[dict]) -> "Scored":
        return cls(
            [r["folder"] for r in rows],
            [r["fold"] for r in rows],
            [r["person"] for r in rows],
            [r["image"] for r in rows],
            np.array([r["probabilities"] for r in rows], dtype=float).reshape(-1, len(ATTRIBUTES)),
            np.array([r["labels"] for r in rows], dtype=int).reshape(-1, len(ATTRIBUTES)),
        )


def read_oof(work: str | Path) -> Scored:
    """A crossval run's out-of-fold predictions so far (``WORK/oof.jsonl``; none before fold 0)."""
    path = Path(work) / OOF
    lines = path.read_text().splitlines() if path.exists() else []
    return Scored.from_rows([json.loads(line) for line in lines])


def fold_count(folders: list[str]) -> int:
    """K, the same in every folder's manifest (built with ``--folds K``)."""
    counts = set()
    for folder in folders:
        split = read_manifest(record_files(Path(folder) / "test"))["split"]
        if not isinstance(split, dict) or "folds" not in split:
            raise RecordsError(f"{folder}: not built with 'data tfrecords --identities … --folds K'")
        counts.add((split["folds"], split["seed"], split["test_percent"]))
    if len(counts) != 1:
        raise RecordsError(f"the folders were split differently: {sorted(counts)}")
    return counts.pop()[0]


def _shards(folder: str, split: str) -> list[str]:
    try:
        return record_files(Path(folder) / split)
    except RecordsError:
        return []  # a split with no images has no shards


def _model(directory: Path):
    from facelabel.artifact import load_artifact
    from facelabel.vision.classifier import Classifier

    return Classifier(load_artifact(directory)).model


def predict_split(model, folders: list[str], split: str, fold: int, people: dict) -> Scored:
    """The model's probabilities for ``split`` of each folder (absent ones skipped)."""
    from trainer.dataset import names_of
    from trainer.train import predict

    parts = []
    for folder in folders:
        files = _shards(folder, split)
        if not files:
            continue
        probabilities, labels = predict(model, files, model.input_shape[1])
        names = names_of(files)
        persons = [people.get(n, "") for n in names]
        parts.append(
            Scored(
                [Path(folder).name] * len(names), [fold] * len(names), persons, names, probabilities, labels
            )
        )
    return Scored(
        *([x for p in parts for x in getattr(p, f)] for f in ("folder", "fold", "person", "image")),
        np.concatenate([p.probabilities for p in parts]) if parts else np.zeros((0, len(ATTRIBUTES))),
        np.concatenate([p.labels for p in parts]) if parts else np.zeros((0, len(ATTRIBUTES)), int),
    )


def run(
    recipe: Recipe,
    *,
    folders: list[str],
    score_only: list[str],
    people: dict[str, str],
    work: str | Path,
    name: str,
    final_model: bool = True,
) -> Path | None:
    """Cross-validate, write ``crossval.json`` and ``oof.jsonl``, then (with ``final_model``) train
    the final model and write ``test.json``; returns the final model's directory. Finished folds
    are not retrained."""
    work = Path(work)
    recipe = dataclasses.replace(recipe, fixed_epochs=True)
    folds = fold_count(folders + score_only)
    _train_folds(recipe, folders, score_only, people, work, folds)
    oof = read_oof(work)
    trained_on = np.isin(oof.folder, [Path(d).name for d in folders])
    # rounded as the shipped model stores them, so that every figure is at the shipped values
    thresholds = np.round(best_thresholds(oof.probabilities[trained_on], oof.labels[trained_on]), 4)
    report = crossval_report(oof, trained_on, folds)
    report["thresholds"] = {a: round(float(t), 4) for a, t in zip(ATTRIBUTES, thresholds)}
    (work / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    if not final_model:
        return None

    from trainer.train import train

    final = train(
        dataclasses.replace(recipe, steps_per_epoch=_fold_steps(work, folds, recipe.batch_size)),
        train_specs=[f"{d}/fold{j}" for d in folders for j in range(folds) if _shards(d, f"fold{j}")],
        val_spec=f"{folders[0]}/test",
        model_dir=work / "models",
        name=name,
        thresholds=(thresholds.tolist(), THRESHOLDS_FROM.format(folds=folds)),
    )
    model = _model(final)
    test = predict_split(model, folders + score_only, "test", -1, people)
    held_out = np.isin(test.folder, [Path(d).name for d in folders])
    (work / TEST).write_text(json.dumps(test_report(test, held_out, thresholds), indent=2) + "\n")
    if score_only:  # faces no model trained on: does the shipped model read its thresholds alike?
        shipped = [predict_split(model, score_only, f"fold{k}", k, people) for k in range(folds)]
        report["shipped_model"] = agreement(oof.where(~trained_on), shipped, thresholds)
        (work / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return final


def _train_folds(
    recipe: Recipe, folders: list[str], score_only: list[str], people: dict, work: Path, folds: int
) -> None:
    """Each fold not yet in ``oof.jsonl``: a model trained on the other folds predicts it, in
    every folder, and its rows are appended."""
    import keras

    from trainer.train import train

    done = set(read_oof(work).fold)
    for fold in sorted(set(range(folds)) - done):
        others = [
            f"{d}/fold{j}" for d in folders for j in range(folds) if j != fold and _shards(d, f"fold{j}")
        ]
        directory = train(
            recipe,
            train_specs=others,
            val_spec=f"{folders[0]}/fold{fold}",
            model_dir=work / "folds",
            name=f"fold{fold}",
        )
        scored = predict_split(_model(directory), folders + score_only, f"fold{fold}", fold, people)
        with (work / OOF).open("a") as out:
            out.writelines(json.dumps(r) + "\n" for r in scored.rows())
        keras.backend.clear_session()


def _fold_steps(work: Path, folds: int, batch_size: int) -> int:
    """Batches in a fold model's epoch (on average): the final model trains as many, so that it
    is trained as far as the models whose outputs chose its thresholds. Trained on every fold
    for the fold models' epochs instead, it scored lower across the board and labelled far
    fewer of the score-only photos positive at those thresholds (the report's shipped_model)."""
    from facelabel.artifact import load_artifact

    images = [
        load_artifact(work / "folds" / f"fold{k}").meta["training"]["data"]["train_images"]
        for k in range(folds)
    ]
    return round(float(np.mean([np.ceil(n / batch_size) for n in images])))


THRESHOLDS_FROM = (
    "{folds}-fold person-grouped cross-validation: per attribute, maximising F1 over every "
    "out-of-fold prediction"
)


def cross_fitted_thresholds(oof: Scored, trained_on: np.ndarray, folds: int) -> np.ndarray:
    """Each row's thresholds: chosen on the other folds' out-of-fold predictions of the training
    folders, never on the row's own fold."""
    fold = np.array(oof.fold)
    pool = oof.where(trained_on)
    per_row = np.zeros_like(oof.probabilities)
    for k in range(folds):
        others = np.array(pool.fold) != k
        per_row[fold == k] = best_thresholds(pool.probabilities[others], pool.labels[others])
    return per_row


def crossval_report(oof: Scored, trained_on: np.ndarray, folds: int) -> dict:
    """Per folder and pooled over the training folders: each fold scored at thresholds chosen on
    the other folds' out-of-fold predictions (of the training folders)."""
    per_row = cross_fitted_thresholds(oof, trained_on, folds)
    report = {"folds": folds, "people": len(set(oof.person)), "sets": {}}
    folder = np.array(oof.folder)
    report["sets"][POOLED] = metrics(oof.where(trained_on), per_row[trained_on])
    for name in dict.fromkeys(oof.folder):
        report["sets"][name] = metrics(oof.where(folder == name), per_row[folder == name])
    return report


def agreement(oof: Scored, shipped: list[Scored], thresholds: np.ndarray) -> dict:
    """The fold models (``oof``) and the shipped model on the same faces, which none of them
    trained on: per attribute, the share each labels positive at the shipped thresholds, and
    each one's F1. The thresholds were chosen on the fold models' outputs; a shipped model that
    scores differently labels a different share, and its F1 there shows what that costs."""
    rows = {(f, i): n for n, (f, i) in enumerate(zip(oof.folder, oof.image))}
    order = [rows[key] for part in shipped for key in zip(part.folder, part.image)]
    labels, folds = oof.labels[order], oof.probabilities[order] >= thresholds
    final = np.concatenate([part.probabilities for part in shipped]) >= thresholds
    return {
        "faces": len(order),
        "attributes": {
            attribute: {
                "support": int(labels[:, column].sum()),
                "labelled_positive": {
                    "fold_models": round(float(folds[:, column].mean()), 4),
                    "shipped_model": round(float(final[:, column].mean()), 4),
                },
                "f1": {
                    "fold_models": round(f1_score(labels[:, column], folds[:, column].astype(int)), 4),
                    "shipped_model": round(f1_score(labels[:, column], final[:, column].astype(int)), 4),
                },
            }
            for column, attribute in enumerate(ATTRIBUTES)
        },
    }


def test_report(test: Scored, trained_on: np.ndarray, thresholds: np.ndarray) -> dict:
    """The final model on the held-out people at its shipped thresholds: pooled over the
    training folders (as the cross-validated estimate), then per folder."""
    folder = np.array(test.folder)
    every = np.tile(thresholds, (len(test.image), 1))
    sets = {POOLED: metrics(test.where(trained_on), every[trained_on])}
    for name in dict.fromkeys(test.folder):
        sets[name] = metrics(test.where(folder == name), every[folder == name])
    return {"people": len(set(test.person)), "sets": sets}


def metrics(scored: Scored, thresholds: np.ndarray, rounds: int = ROUNDS, seed: int = 0) -> dict:
    """Per attribute and macro: F1 at the given per-face thresholds and at 0.5, AUC, and 95 %
    intervals from resampling people (all of a person's faces together)."""
    predicted = (scored.probabilities >= thresholds).astype(int)
    draws = person_resamples(scored.person, rounds, seed)
    report = {"faces": len(scored.image), "people": len(set(scored.person)), "attributes": {}}
    macro_draws = np.zeros(rounds)
    for column, attribute in enumerate(ATTRIBUTES):
        truth, scores, guess = scored.labels[:, column], scored.probabilities[:, column], predicted[:, column]
        f1s = np.array([weighted_f1(truth, guess, w) for w in draws])
        macro_draws += f1s / len(ATTRIBUTES)
        aucs = [a for a in (weighted_auc(truth, scores, w) for w in draws) if a is not None]
        auc = roc_auc(truth, scores)
        tp, fp, fn = _weighted_counts(truth, guess, np.ones(len(truth)))
        report["attributes"][attribute] = {
            "support": int(truth.sum()),
            "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
            "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
            "f1": round(f1_score(truth, guess), 4),
            "f1_95": _interval(f1s),
            "f1_at_0.5": binary_metrics(truth, scores, 0.5)["f1"],
            "auc": round(auc, 4) if auc is not None else None,
            "auc_95": _interval(aucs) if aucs else None,
        }
    per = report["attributes"].values()
    report["macro_f1"] = round(float(np.mean([m["f1"] for m in per])), 4)
    report["macro_f1_95"] = _interval(macro_draws)
    report["macro_f1_at_0.5"] = round(float(np.mean([m["f1_at_0.5"] for m in per])), 4)
    aucs = [m["auc"] for m in per if m["auc"] is not None]
    report["macro_auc"] = round(float(np.mean(aucs)), 4) if aucs else None
    return report


def person_resamples(person, rounds: int = ROUNDS, seed: int = 0) -> list[np.ndarray]:
    """``rounds`` resamples of people with replacement, each as a weight per face: how many
    times its person was drawn (all of a person's faces go together)."""
    persons, groups = np.unique(person, return_inverse=True)
    rng = np.random.default_rng(seed)
    return [
        np.bincount(rng.integers(0, len(persons), len(persons)), minlength=len(persons))[groups]
        for _ in range(rounds)
    ]


def weighted_auc(truth: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float | None:
    """ROC AUC with each face counted ``weights`` times (ties count half); None without both
    classes. A resample of people is a weighting of faces, so no rows are copied."""
    order = np.argsort(scores, kind="mergesort")
    ranked, positive, weight = scores[order], truth[order].astype(float), weights[order].astype(float)
    _, starts = np.unique(ranked, return_index=True)
    positives = np.add.reduceat(weight * positive, starts)
    negatives = np.add.reduceat(weight * (1 - positive), starts)
    if positives.sum() == 0 or negatives.sum() == 0:
        return None
    below = np.cumsum(negatives) - negatives
    return float((positives * (below + negatives / 2)).sum() / (positives.sum() * negatives.sum()))


def _weighted_counts(truth, guess, weights) -> tuple[float, float, float]:
    tp = float((weights * ((guess == 1) & (truth == 1))).sum())
    fp = float((weights * ((guess == 1) & (truth == 0))).sum())
    fn = float((weights * ((guess == 0) & (truth == 1))).sum())
    return tp, fp, fn


def weighted_f1(truth, guess, weights) -> float:
    tp, fp, fn = _weighted_counts(truth, guess, weights)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _interval(values) -> list[float]:
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]
