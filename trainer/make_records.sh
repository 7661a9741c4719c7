#!/usr/bin/env bash
# The CelebA sample's three folders as person-split records at each input size given:
# `bash trainer/make_records.sh WORK SIZE...` writes WORK/records<SIZE>/<folder>/. Every image, split by
# person with one seed: 3 cross-validation folds and a test split of 10 % of the people (the same person
# lands in the same split in every folder and at every size). aligned/ (178x218) and aligned_89x109/ (half
# resolution) train, each image whole (FRAMING=aligned) or as a worker crops a photo (detected); wild/
# photos are cropped as a worker crops them and only scored, so the card has an in-the-wild figure for
# people no model saw.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELEBA=${FACELABEL_CELEBA_DIR:-../shared/celeba-sample}
FRAMING=${FRAMING:-aligned}  # or detected: see docs/research.md, "Why this framing"
FOLDS=${FOLDS:-3}
WORK=$1
shift
for set in aligned aligned_89x109 wild; do
  $PY -m facelabel data convert --annotation "$CELEBA/$set/list_attr_celeba.txt" --json "$WORK/$set.json" \
      --mixed-num 1000000 --seed 0
  framing=$FRAMING; [ "$set" = wild ] && framing=detected
  for size in "$@"; do
    $PY -m facelabel data tfrecords --json "$WORK/$set.json" --images "$CELEBA/$set/images" \
        --out "$WORK/records$size/$set" --identities "$CELEBA/$set/identity_CelebA.txt" --folds "$FOLDS" \
        --test-percent 10 --seed 0 --size "$size" --framing "$framing"
  done
done
