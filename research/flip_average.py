"""Mirror test-time averaging judged by the cross-validation that chose the bundled model: each
fold model also predicts its held-out fold mirrored, the two probabilities are averaged, and
the thresholds are cross-fitted as ``crossval`` fits them. Prints both reports and the pooled
macro-F1 difference with a 95 % interval from resampling people (the same draws for both).

Usage: python research/flip_average.py --work build/research/cv-160
           --records build/research/records160/aligned --records build/research/records160/aligned_89x109
           --score-only build/research/records160/wild
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facelabel.artifact import ATTRIBUTES  # noqa: E402
from research.paired import paired_difference  # noqa: E402
from trainer.crossval import POOLED, Scored, _model, crossval_report, fold_count, read_oof  # noqa: E402


def mirrored(work: Path, oof: Scored, folders: list[str], folds: int) -> np.ndarray:
    """Each fold model's probabilities for its held-out fold, mirrored, in ``oof``'s row order."""
    import tensorflow as tf

    from trainer.dataset import images_of, names_of
    from trainer.records import record_files

    row = {key: n for n, key in enumerate(zip(oof.folder, oof.image))}
    out = np.full_like(oof.probabilities, np.nan)
    for k in range(folds):
        model = _model(work / "folds" / f"fold{k}")
        size = model.input_shape[1]
        for folder in folders:
            files = record_files(Path(folder) / f"fold{k}")
            batches = images_of(files, size).batch(64).map(tf.image.flip_left_right)
            probabilities = np.concatenate([model.predict_on_batch(b) for b in batches])
            for name, p in zip(names_of(files), probabilities):
                out[row[(Path(folder).name, name)]] = p
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", required=True, help="A finished crossval --work folder.")
    parser.add_argument("--records", action="append", required=True)
    parser.add_argument("--score-only", action="append", default=[])
    args = parser.parse_args()
    work = Path(args.work)
    folds = fold_count(args.records + args.score_only)
    plain = read_oof(work)
    flipped = mirrored(work, plain, args.records + args.score_only, folds)
    averaged = Scored(
        plain.folder, plain.fold, plain.person, plain.image, (plain.probabilities + flipped) / 2, plain.labels
    )
    trained_on = np.isin(plain.folder, [Path(d).name for d in args.records])
    for name, scored in (("plain", plain), ("mirror-averaged", averaged)):
        for folder, m in crossval_report(scored, trained_on, folds)["sets"].items():
            f1s = ", ".join(f"{a} {m['attributes'][a]['f1']}" for a in ATTRIBUTES)
            print(
                f"{name}, {folder}: macro-F1 {m['macro_f1']} {m['macro_f1_95']}, AUC {m['macro_auc']}; {f1s}"
            )
    mean, low, high = paired_difference(plain, averaged, trained_on, folds)
    print(f"{POOLED}, mirror-averaged minus plain macro-F1: {mean:+.4f} (95 % {low:+.4f} to {high:+.4f})")


if __name__ == "__main__":
    main()
