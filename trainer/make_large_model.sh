#!/usr/bin/env bash
# Rebuilds the bundled large model (facelabel/models/large) from ../shared: `make model-large`.
# FaceNet (Inception-ResNet-v1 trained on MS-Celeb-1M faces) frozen up to Mixed_7a, whose
# outputs are computed once per image (and one augmented view) and cached beside the records;
# the last Inception-ResNet blocks and the head train on them. Stored at float16.
# About 75 minutes on 2 CPU cores (features, 3 folds and the final model).
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
WORK=${WORK:-build/model}
NAME=${NAME:-facenet-160-celeba-sample}
FACENET_H5=${FACENET_H5:-build/weights/facenet_keras.h5}  # make model-large downloads it
OUT=facelabel/models/large

if [ ! -f "$WORK/records/wild/manifest.json" ]; then
  PY="$PY" FACELABEL_CELEBA_DIR="$CELEBA" WORK="$WORK" bash trainer/make_records.sh
fi
$PY -m facelabel --db "sqlite:///$WORK/registry.db" crossval \
    --records "$WORK/records/aligned" --records "$WORK/records/aligned_89x109" --score-only "$WORK/records/wild" \
    --identities "$CELEBA/aligned/identity_CelebA.txt" --identities "$CELEBA/aligned_89x109/identity_CelebA.txt" \
    --identities "$CELEBA/wild/identity_CelebA.txt" --work "$WORK/cv-large" --name "$NAME" \
    --model facenet --weights "$FACENET_H5" --frozen-below Mixed_7a --float16 --epochs 3 --lr 1e-3 \
    --fine-tune --fine-tune-epochs 5 --fine-tune-lr 1e-4 --seed 0

rm -rf "$OUT" && mkdir -p "$OUT/report"
cp "$WORK/cv-large/models/$NAME/model.keras" "$WORK/cv-large/models/$NAME/model.json" "$OUT/"
cp "$WORK/cv-large/crossval.json" "$WORK/cv-large/test.json" "$OUT/report/"
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$OUT" $PY bench/wild.py --detector yunet --json "$OUT/report/wild.json"
$PY -m trainer.model_card "$OUT" trainer/make_large_model.sh
