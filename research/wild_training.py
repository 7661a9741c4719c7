"""Training on in-the-wild photos: does a recipe label detector crops better when their folder trains
beside the aligned faces (``crossval --records wild``) than when it is only scored (``--score-only``)?
Two finished runs of one recipe and seed over the same person folds, with no training here. Each run
is scored at the thresholds its own ``crossval`` ships, cross-fitted on the folders it trained on, and
the two are compared face by face: on the photos, and on every other folder's faces pooled. Prints
both runs' figures, the paired differences with 95 % intervals from resampling people (the same draws
for both runs), and whether they pass the rule fixed before the runs were scored: the photos gain at
least ``--min-gain`` with the interval's lower end above 0, and the other faces lose no more than
``--max-loss``.

Usage: python research/wild_training.py --scored build/research/cv-160-seed2
           --trained build/research/cv-160-wild-seed2
           [--folder wild] [--min-gain 0.025] [--max-loss 0.01] [--json build/research/wild_training.json]
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
from trainer.crossval import read_oof  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scored", required=True, help="A finished crossval run that only scored --folder.")
    parser.add_argument("--trained", required=True, help="The same recipe and seed, trained on --folder too.")
    parser.add_argument("--folder", default="wild", help="The detector-crop folder (its name).")
    parser.add_argument("--min-gain", type=float, default=0.025, help="Macro-F1 the photos must gain.")
    parser.add_argument("--max-loss", type=float, default=0.01, help="Macro-F1 the other faces may lose.")
    parser.add_argument("--json", help="Write both runs' figures, the differences and the verdict here.")
    args = parser.parse_args()
    (recipe, scored_on), (other_recipe, trained_on) = (
        finished_run(parser, w) for w in (args.scored, args.trained)
    )
    if recipe != other_recipe:
        parser.error("the runs' recipes differ: compare one recipe and seed, trained on the photos or not")
    if args.folder in scored_on or args.folder not in trained_on:
        parser.error(f"--scored must not have trained on {args.folder}, and --trained must have")
    try:
        scored, trained = same_faces([read_oof(args.scored), read_oof(args.trained)])
    except FacelabelError as error:
        parser.error(str(error))
    folds = max(scored.fold) + 1
    folder = np.array(scored.folder)
    photos = folder == args.folder
    if not photos.any():
        parser.error(f"the runs scored no folder named {args.folder}")
    others = f"every folder but {args.folder}"
    runs = {"scored": (scored, ~photos), "trained": (trained, np.ones(len(photos), bool))}
    faces = {others: ~photos} | {f: folder == f for f in dict.fromkeys(scored.folder)}
    reports, differences = face_by_face(runs, faces, folds)
    for name, sets in reports.items():
        way = "trained on" if name == "trained" else "only scoring"
        for f, m in sets.items():
            f1s = ", ".join(f"{a} {m['attributes'][a]['f1']}" for a in ATTRIBUTES)
            print(f"{way} {args.folder}, {f}: macro-F1 {m['macro_f1']} {m['macro_f1_95']}; {f1s}")
    for f, (mean, low, high) in differences.items():
        print(f"{f}, trained minus scored: {mean:+.4f} (95 % {low:+.4f} to {high:+.4f})")
    gain, loss = differences[args.folder], differences[others]
    passes = bool(gain[0] >= args.min_gain and gain[1] > 0 and loss[0] >= -args.max_loss)
    print(
        f"{args.folder} at least {args.min_gain:+.3f} with the interval above 0, the rest no worse than "
        f"{-args.max_loss:+.3f}: {'passes' if passes else 'fails'}"
    )
    if args.json:
        report = {
            "runs": {
                name: Path(work).name for name, work in (("scored", args.scored), ("trained", args.trained))
            },
            "seed": recipe["seed"],
            "sets": reports,
            "trained_minus_scored": differences,
            "min_gain": args.min_gain,
            "max_loss": args.max_loss,
            "passes": passes,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
