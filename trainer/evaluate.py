"""Metrics for sparse multi-label predictions: per attribute, at the stored thresholds and
at 0.5, with bootstrap intervals (val is small: 780 faces of 26 people)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facelabel.artifact import ATTRIBUTES


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties averaged); None without both classes."""
    positives = labels.sum()
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(sorted_scores[np.diff(sorted_scores, prepend=np.nan) == 0]):  # average tied ranks
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def counts(labels: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(((predicted == 1) & (labels == 1)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    tn = int(((predicted == 0) & (labels == 0)).sum())
    return tp, fp, fn, tn


def f1_score(labels: np.ndarray, predicted: np.ndarray) -> float:
    tp, fp, fn, _ = counts(labels, predicted)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    predicted = (scores >= threshold).astype(int)
    tp, fp, fn, tn = counts(labels, predicted)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    return {
        "threshold": round(float(threshold), 4),
        "accuracy": round((tp + tn) / len(labels), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1_score(labels, predicted), 4),
        "balanced_accuracy": round((recall + specificity) / 2, 4),
    }


def best_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per attribute, the threshold that maximises F1 (midpoint between neighbouring scores)."""
    thresholds = []
    for column in range(probabilities.shape[1]):
        scores, truth = probabilities[:, column], labels[:, column]
        candidates = np.unique(scores)
        midpoints = np.concatenate([[0.5], (candidates[:-1] + candidates[1:]) / 2])
        f1s = [f1_score(truth, (scores >= t).astype(int)) for t in midpoints]
        thresholds.append(float(midpoints[int(np.argmax(f1s))]) if truth.any() else 0.5)
    return np.clip(np.array(thresholds), 1e-4, 1 - 1e-4)


def bootstrap_interval(labels, scores, threshold, *, rounds: int = 1000, seed: int = 0) -> dict:
    """95 % percentile intervals of F1 and AUC over resampled faces."""
    rng = np.random.default_rng(seed)
    f1s, aucs = [], []
    for _ in range(rounds):
        pick = rng.integers(0, len(labels), len(labels))
        f1s.append(f1_score(labels[pick], (scores[pick] >= threshold).astype(int)))
        auc = roc_auc(labels[pick], scores[pick])
        if auc is not None:
            aucs.append(auc)
    return {"f1_95": _interval(f1s), "auc_95": _interval(aucs) if aucs else None}


def _interval(values: list[float]) -> list[float]:
    return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def evaluate_predictions(probabilities: np.ndarray, labels: np.ndarray, thresholds) -> dict:
    """Per attribute: support, AUC, metrics at the stored threshold and at 0.5, intervals;
    plus macro averages."""
    report = {"faces": int(len(labels)), "attributes": {}}
    for column, attribute in enumerate(ATTRIBUTES):
        truth, scores = labels[:, column], probabilities[:, column]
        auc = roc_auc(truth, scores)
        report["attributes"][attribute] = {
            "support": int(truth.sum()),
            "auc": round(auc, 4) if auc is not None else None,
            "at_threshold": binary_metrics(truth, scores, thresholds[column]),
            "at_0.5": binary_metrics(truth, scores, 0.5),
            "bootstrap": bootstrap_interval(truth, scores, thresholds[column]),
        }
    per = report["attributes"].values()
    report["macro_f1"] = round(float(np.mean([m["at_threshold"]["f1"] for m in per])), 4)
    report["macro_f1_at_0.5"] = round(float(np.mean([m["at_0.5"]["f1"] for m in per])), 4)
    aucs = [m["auc"] for m in per if m["auc"] is not None]
    report["macro_auc"] = round(float(np.mean(aucs)), 4) if aucs else None
    return report


def write_report(
    report: dict,
    probabilities: np.ndarray,
    labels: np.ndarray,
    directory: str | Path,
    history: dict | None = None,
) -> Path:
    """``metrics.json``, ``summary.md``, ``pr_curves.png`` and, given a history, ``training.png``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (directory / "summary.md").write_text(summary_markdown(report))
    _plot_pr(probabilities, labels, report, directory / "pr_curves.png")
    if history:
        _plot_history(history, directory / "training.png")
    return directory


def summary_markdown(report: dict) -> str:
    lines = [
        f"{report['faces']} faces; macro-F1 {report['macro_f1']} at the stored thresholds, "
        f"{report['macro_f1_at_0.5']} at 0.5; macro AUC {report['macro_auc']}.",
        "",
        "| attribute | support | threshold | precision | recall | F1 (95 % CI) | F1 at 0.5 "
        "| AUC (95 % CI) | balanced acc. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for attribute in ATTRIBUTES:
        m = report["attributes"][attribute]
        t, half, boot = m["at_threshold"], m["at_0.5"], m["bootstrap"]
        f1_ci = f"{t['f1']} ({boot['f1_95'][0]}–{boot['f1_95'][1]})"
        auc_ci = f"{m['auc']} ({boot['auc_95'][0]}–{boot['auc_95'][1]})" if boot["auc_95"] else str(m["auc"])
        lines.append(
            f"| {attribute} | {m['support']} | {t['threshold']} | {t['precision']} | {t['recall']} | {f1_ci} "
            f"| {half['f1']} | {auc_ci} | {t['balanced_accuracy']} |"
        )
    return "\n".join(lines) + "\n"


def _plot_pr(probabilities, labels, report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(ATTRIBUTES), figsize=(4 * len(ATTRIBUTES), 4))
    for axis, (column, attribute) in zip(axes, enumerate(ATTRIBUTES)):
        truth, scores = labels[:, column], probabilities[:, column]
        order = np.argsort(-scores)
        hits = np.cumsum(truth[order])
        precision = hits / np.arange(1, len(order) + 1)
        recall = hits / max(truth.sum(), 1)
        axis.plot(recall, precision)
        point = report["attributes"][attribute]["at_threshold"]
        axis.scatter(
            [point["recall"]],
            [point["precision"]],
            color="red",
            zorder=3,
            label=f"threshold {point['threshold']}",
        )
        axis.set(
            title=f"{attribute} (F1 {point['f1']})",
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_history(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    offset = 0
    for phase, values in history.items():
        epochs = np.arange(offset + 1, offset + len(values.get("loss", [])) + 1)
        for axis, key in zip(axes, ("loss", "auc")):
            axis.plot(epochs, values.get(key, []), label=f"{phase} train")
            axis.plot(epochs, values.get(f"val_{key}", []), "--", label=f"{phase} val")
            axis.set(xlabel="epoch", title=key)
        offset += len(epochs)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
