"""Thresholds of their own for detector crops: are in-the-wild photos labelled better at thresholds
chosen on other wild photos than at those chosen on the training folders' faces (what a model ships)?
Both are cross-fitted by fold on a finished ``crossval`` run's out-of-fold predictions (a photo's
thresholds never come from its own fold), with no training. Prints the photos' macro-F1 each way,
the thresholds each way, and the paired difference with a 95 % interval from resampling people.

Usage: python research/wild_thresholds.py --work build/research/cv-224-seed1 [--folder wild]
           [--score-only wild] [--json build/research/wild_thresholds.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facelabel.artifact import ATTRIBUTES  # noqa: E402
from research.paired import guess_difference  # noqa: E402
from trainer.crossval import cross_fitted_thresholds, metrics, read_oof  # noqa: E402
from trainer.evaluate import best_thresholds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", required=True, help="A finished crossval --work folder.")
    parser.add_argument("--folder", default="wild", help="The detector-crop folder (its name).")
    parser.add_argument(
        "--score-only", action="append", default=[], help="A folder the run only scored (its name)."
    )
    parser.add_argument("--json", help="Write both reports and the difference here.")
    args = parser.parse_args()
    oof = read_oof(args.work)
    folder = np.array(oof.folder)
    if args.folder not in oof.folder:
        parser.error(f"{args.work} scored no folder named {args.folder}")
    folds = max(oof.fold) + 1
    trained_on = ~np.isin(folder, args.score_only)
    photos = folder == args.folder
    shipped_way = cross_fitted_thresholds(oof, trained_on, folds)[photos]
    wild = oof.where(photos)
    own_way = cross_fitted_thresholds(wild, np.ones(len(wild.image), bool), folds)
    reports = {
        "training folders' thresholds": metrics(wild, shipped_way),
        f"{args.folder}'s own thresholds": metrics(wild, own_way),
    }
    pool = oof.where(trained_on)
    chosen = {
        "training folders' thresholds": best_thresholds(pool.probabilities, pool.labels),
        f"{args.folder}'s own thresholds": best_thresholds(wild.probabilities, wild.labels),
    }
    for name, m in reports.items():
        f1s = ", ".join(f"{a} {m['attributes'][a]['f1']}" for a in ATTRIBUTES)
        values = ", ".join(f"{a} {t:.3f}" for a, t in zip(ATTRIBUTES, chosen[name]))
        print(f"{args.folder} at the {name}: macro-F1 {m['macro_f1']} {m['macro_f1_95']}; {f1s}")
        print(f"  chosen on every fold: {values}")
    guesses = [(wild.probabilities >= t).astype(int) for t in (shipped_way, own_way)]
    mean, low, high = guess_difference(wild.labels, *guesses, wild.person)
    print(
        f"{args.folder}, own minus training folders' thresholds: {mean:+.4f} (95 % {low:+.4f} to {high:+.4f})"
    )
    if args.json:
        report = {
            "sets": reports,
            "thresholds": {name: [round(float(t), 4) for t in values] for name, values in chosen.items()},
            "own_minus_shipped": [mean, low, high],
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
