"""On the real CelebA sample (FACELABEL_CELEBA_DIR): the annotation files convert, records
build, and the bundled model scores its held-out people as its card reports."""

from __future__ import annotations

import json

import pytest

from facelabel.artifact import load_artifact
from facelabel.settings import BUNDLED_MODEL
from tests.helpers import invoke_ok as invoke

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def val_records(celeba_dir, tmp_path_factory):
    """The sample's annotation converted, and records of the bundled model's held-out test
    people (the person split ``make model`` used: seed 0, 3 folds, 10 % of people)."""
    from trainer.annotations import load_selection
    from trainer.records import person_folds, read_identities

    work = tmp_path_factory.mktemp("celeba")
    aligned = celeba_dir / "aligned"
    summary = json.loads(
        invoke(
            "data",
            "convert",
            "--annotation",
            aligned / "list_attr_celeba.txt",
            "--json",
            work / "selected.json",
            "--mixed-num",
            1000000,
            "--partition",
            aligned / "list_eval_partition.txt",
        )  # fmt: skip
    )
    identities = read_identities(aligned / "identity_CelebA.txt")
    split = person_folds(
        load_selection(work / "selected.json"), folds=3, test_percent=10, seed=0, identities=identities
    )
    held_out = {e.image for e in split["test"]}
    selection = json.loads((work / "selected.json").read_text())
    selection["images"] = [i for i in selection["images"] if i["image"] in held_out]
    (work / "test.json").write_text(json.dumps(selection))
    artifact = load_artifact(BUNDLED_MODEL)
    invoke(
        "data", "tfrecords", "--json", work / "test.json", "--images", aligned / "images", "--out",
        work / "records", "--identities", aligned / "identity_CelebA.txt", "--folds", 3, "--test-percent", 10,
        "--seed", 0, "--size", artifact.input_size, "--framing", artifact.meta["framing"],
    )  # fmt: skip
    return summary, work / "records" / "test"


def test_real_annotation_converts_with_the_sample_counts(val_records):
    summary, _ = val_records
    assert summary["all"]["images"] == 5371
    assert summary["all"]["positives"] == {"eyeglasses": 265, "beard": 837, "mustache": 318, "hat": 188}
    assert (summary["train"]["images"], summary["val"]["images"]) == (4591, 780)


def test_bundled_model_scores_its_held_out_people_as_its_card_says(val_records):
    """``metrics.val`` of the bundled model are its scores on the aligned held-out people."""
    _, records = val_records
    card = load_artifact(BUNDLED_MODEL).meta.get("metrics", {}).get("val")
    if not card:
        pytest.fail("the bundled model has no held-out metrics: it was not trained")
    report_dir = records.parent.parent / "report"
    invoke("evaluate", "--model", BUNDLED_MODEL, "--tfrecord", records, "--report", report_dir)
    measured = json.loads((report_dir / "metrics.json").read_text())
    assert measured["faces"] == card["faces"] == 424  # the aligned folder's held-out people
    assert measured["macro_f1"] == pytest.approx(card["macro_f1"], abs=0.005)
    for attribute, expected in card["attributes"].items():
        assert measured["attributes"][attribute]["auc"] == pytest.approx(expected["auc"], abs=0.002)
