"""How alike a crossval run's fold models are, from its out-of-fold predictions: per fold and
attribute, the mean predicted probability on the held-out fold, the AUC, and the F1 at the
thresholds crossval scored it at (cross-fitted on the other folds) against the F1 at that
fold's own best threshold. Folds that rank alike (AUC) but differ in mean probability are
calibrated differently, which cross-fitted thresholds (and the shipped model's) pay for.

Usage: python research/fold_calibration.py --work build/research/cv-plain
           [--work build/research/cv-plain-seed1] [--score-only wild]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facelabel.artifact import ATTRIBUTES  # noqa: E402
from trainer.crossval import Scored, cross_fitted_thresholds, read_oof  # noqa: E402
from trainer.evaluate import best_thresholds, f1_score, roc_auc  # noqa: E402


def fold_rows(oof: Scored, trained_on: np.ndarray) -> list[dict]:
    """One row per fold of the training folders' predictions."""
    folds = max(oof.fold) + 1
    at = cross_fitted_thresholds(oof, trained_on, folds)
    rows = []
    for k in range(folds):
        keep = trained_on & (np.array(oof.fold) == k)
        labels, scores = oof.labels[keep], oof.probabilities[keep]
        own = best_thresholds(scores, labels)
        rows.append(
            {
                attribute: {
                    "mean_probability": float(scores[:, j].mean()),
                    "auc": roc_auc(labels[:, j], scores[:, j]),
                    "f1_cross_fitted": f1_score(labels[:, j], scores[:, j] >= at[keep][:, j]),
                    "f1_own_threshold": f1_score(labels[:, j], scores[:, j] >= own[j]),
                }
                for j, attribute in enumerate(ATTRIBUTES)
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", action="append", required=True, help="A finished crossval --work folder.")
    parser.add_argument("--score-only", action="append", default=[], help="Folder names only scored.")
    args = parser.parse_args()
    print("| run | fold | attribute | mean probability | AUC | F1, cross-fitted | F1, own best threshold |")
    print("|---|---|---|---|---|---|---|")
    for work in args.work:
        oof = read_oof(work)
        trained_on = ~np.isin(oof.folder, args.score_only)
        for k, row in enumerate(fold_rows(oof, trained_on)):
            for attribute, m in row.items():
                print(
                    f"| {work} | {k} | {attribute} | {m['mean_probability']:.3f} | {m['auc']:.4f} "
                    f"| {m['f1_cross_fitted']:.3f} | {m['f1_own_threshold']:.3f} |"
                )


if __name__ == "__main__":
    main()
