"""An ensemble judged by the cross-validation that judged its members, with no training: runs
cross-validated by the same person folds predicted every face with models trained without its
person, so the mean of their out-of-fold probabilities is the ensemble's out-of-fold prediction.
Thresholds are cross-fitted as ``crossval`` fits them. Prints each run's report and the
ensemble's, and the pooled macro-F1 difference between the ensemble and its best run, with a
95 % interval from resampling people (the same draws for both), and whether that passes the
rule fixed before the ensemble is scored (``--min-gain``: at least that much, the interval's lower
end above 0).

Usage: python research/ensemble_oof.py --work build/research/cv-224-seed1 --work build/research/cv-160-seed0
           [--score-only wild] [--min-gain 0.005] [--json build/research/ensemble.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facelabel.artifact import ATTRIBUTES  # noqa: E402
from facelabel.errors import FacelabelError  # noqa: E402
from research.card import NETWORK  # noqa: E402
from research.paired import paired_difference, same_faces  # noqa: E402
from trainer.crossval import POOLED, Scored, crossval_report, read_oof  # noqa: E402


def averaged(runs: list[Scored]) -> Scored:
    """The mean probabilities of runs already in one row order."""
    first = runs[0]
    probabilities = np.mean([run.probabilities for run in runs], axis=0)
    return Scored(first.folder, first.fold, first.person, first.image, probabilities, first.labels)


def member(work: str) -> dict:
    """A run's folder name, network and seed, from its first fold model."""
    meta = json.loads((Path(work) / "folds" / "fold0" / "model.json").read_text())
    return {
        "work": Path(work).name,
        **{k: meta[k] for k in NETWORK},
        "seed": meta["training"]["recipe"]["seed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", action="append", required=True, help="A finished crossval --work folder.")
    parser.add_argument(
        "--score-only", action="append", default=[], help="A folder the runs only scored (its name)."
    )
    parser.add_argument(
        "--min-gain",
        type=float,
        default=0.005,
        help="Pooled macro-F1 over the best run the ensemble must add.",
    )
    parser.add_argument("--json", help="Write the ensemble's report, in crossval.json's format, here.")
    args = parser.parse_args()
    if len(args.work) < 2:
        parser.error("an ensemble needs two --work folders or more")
    runs = [read_oof(work) for work in args.work]
    if not all(run.image for run in runs):
        parser.error("a --work folder has no out-of-fold predictions (oof.jsonl)")
    try:
        runs = same_faces(runs)
    except FacelabelError as error:
        parser.error(str(error))
    ensemble = averaged(runs)
    folds = max(ensemble.fold) + 1
    trained_on = ~np.isin(ensemble.folder, args.score_only)
    reports = {work: crossval_report(run, trained_on, folds) for work, run in zip(args.work, runs)}
    reports["ensemble"] = crossval_report(ensemble, trained_on, folds)
    for name, report in reports.items():
        for folder, m in report["sets"].items():
            f1s = ", ".join(f"{a} {m['attributes'][a]['f1']}" for a in ATTRIBUTES)
            print(
                f"{name}, {folder}: macro-F1 {m['macro_f1']} {m['macro_f1_95']}, AUC {m['macro_auc']}; {f1s}"
            )
    best = max(args.work, key=lambda work: reports[work]["sets"][POOLED]["macro_f1"])
    mean, low, high = paired_difference(runs[args.work.index(best)], ensemble, trained_on, folds)
    passes = bool(mean >= args.min_gain and low > 0)
    print(f"{POOLED}, ensemble minus {best}: {mean:+.4f} (95 % {low:+.4f} to {high:+.4f})")
    print(f"at least {args.min_gain:+.3f} with the interval above 0: {'passes' if passes else 'fails'}")
    if args.json:
        report = reports["ensemble"] | {
            "members": [
                member(work)
                | {"macro_f1": {name: m["macro_f1"] for name, m in reports[work]["sets"].items()}}
                for work in args.work
            ],
            "best_member": Path(best).name,
            "minus_best_member": [mean, low, high],
            "min_gain": args.min_gain,
            "passes": passes,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
