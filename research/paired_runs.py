"""One change to a recipe judged face by face: two finished ``crossval`` runs over the same person
folds and folders, the second changing the first's recipe. Each run is scored at its own
cross-fitted thresholds, as ``crossval`` scores it; prints both runs' figures and the change's
macro-F1 difference, pooled and per folder, with 95 % intervals from resampling people (the same
draws for both), and whether it passes the rule fixed before the runs were scored: pooled
macro-F1 gains at least ``--min-gain`` with the interval's lower end above 0.

Usage: python research/paired_runs.py --base build/research/cv-160-seed2
           --changed build/research/cv-160-ls-seed2
           [--score-only wild] [--min-gain 0.015] [--json build/research/paired/label_smoothing.json]
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
from research.paired import face_by_face, finished_run, same_faces  # noqa: E402
from trainer.crossval import POOLED, read_oof  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="A finished crossval run.")
    parser.add_argument("--changed", required=True, help="The same folds and folders, one recipe change.")
    parser.add_argument(
        "--score-only", action="append", default=[], help="A folder the runs only scored (its name)."
    )
    parser.add_argument("--min-gain", type=float, default=0.015, help="Pooled macro-F1 the change must add.")
    parser.add_argument(
        "--json", help="Write both runs' figures, the change, the differences and the verdict."
    )
    args = parser.parse_args()
    (recipe, folders), (other, other_folders) = (finished_run(parser, w) for w in (args.base, args.changed))
    if folders != other_folders:
        parser.error(f"the runs trained on different folders: {sorted(folders)} and {sorted(other_folders)}")
    change = {
        k: [recipe.get(k), other.get(k)]
        for k in sorted(set(recipe) | set(other))
        if recipe.get(k) != other.get(k)
    }
    if not change:
        parser.error("the runs share one recipe: nothing changed")
    try:
        base, changed = same_faces([read_oof(args.base), read_oof(args.changed)])
    except FacelabelError as error:
        parser.error(str(error))
    folds = max(base.fold) + 1
    folder = np.array(base.folder)
    trained_on = ~np.isin(folder, args.score_only)
    faces = {POOLED: trained_on} | {f: folder == f for f in dict.fromkeys(base.folder)}
    runs = {"base": (base, trained_on), "changed": (changed, trained_on)}
    reports, differences = face_by_face(runs, faces, folds)
    for name, sets in reports.items():
        for f, m in sets.items():
            f1s = ", ".join(f"{a} {m['attributes'][a]['f1']}" for a in ATTRIBUTES)
            print(f"{name}, {f}: macro-F1 {m['macro_f1']} {m['macro_f1_95']}; {f1s}")
    print(f"changed: {json.dumps(change)}")
    for f, (mean, low, high) in differences.items():
        print(f"{f}, changed minus base: {mean:+.4f} (95 % {low:+.4f} to {high:+.4f})")
    mean, low, _ = differences[POOLED]
    passes = bool(mean >= args.min_gain and low > 0)
    print(
        f"{POOLED} at least {args.min_gain:+.3f} with the interval above 0: {'passes' if passes else 'fails'}"
    )
    if args.json:
        report = {
            "runs": {"base": Path(args.base).name, "changed": Path(args.changed).name},
            "change": change,
            "sets": reports,
            "changed_minus_base": differences,
            "min_gain": args.min_gain,
            "passes": passes,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
