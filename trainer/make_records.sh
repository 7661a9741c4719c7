#!/usr/bin/env bash
# The person-split records both bundled models train on (make_default_model.sh, make_large_model.sh).
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
WORK=${WORK:-build/model}
FRAMING=${FRAMING:-aligned}  # or detected: see the model card's "Why this framing"
FOLDS=${FOLDS:-3}
mkdir -p "$WORK"

# Every image of the three folders, split by person with one seed: 3 cross-validation folds and a
# test split of 10 % of the people (the same person lands in the same split in every folder).
# aligned/ (178x218) and aligned_89x109/ (half resolution) train, each image whole
# (FRAMING=aligned) or as a worker crops a photo (detected); wild/ photos are cropped as a worker
# crops them and only scored, so the card has an in-the-wild figure for people no model saw.
for set in aligned aligned_89x109 wild; do
  $PY -m facelabel data convert --annotation "$CELEBA/$set/list_attr_celeba.txt" --json "$WORK/$set.json" \
      --mixed-num 1000000 --seed 0
  framing=$FRAMING; [ "$set" = wild ] && framing=detected
  $PY -m facelabel data tfrecords --json "$WORK/$set.json" --images "$CELEBA/$set/images" \
      --out "$WORK/records/$set" --identities "$CELEBA/$set/identity_CelebA.txt" --folds "$FOLDS" \
      --test-percent 10 --seed 0 --size 160 --framing "$framing"
done
