"""On the real CelebA sample (FACELABEL_CELEBA_DIR): the annotation files convert, records
build, and the bundled model's validation metrics are the ones its card reports."""

from __future__ import annotations

import json

import pytest

from facelabel.artifact import load_artifact
from facelabel.settings import BUNDLED_MODEL
from tests.helpers import invoke_ok as invoke

pytestmark = pytest.mark.slow




@pytest.fixture(scope="module")
def val_records(celeba_dir, tmp_path_factory):
    """The sample's annotation converted, and val-partition records built from it."""
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
            10000,
            "--partition",
            aligned / "list_eval_partition.txt",
        )
    )
    selection = json.loads((work / "selected.json").read_text())
    selection["images"] = [i for i in selection["images"] if i["partition"] == "val"]
    (work / "val.json").write_text(json.dumps(selection))
    artifact = load_artifact(BUNDLED_MODEL)
    invoke(
        "data",
        "tfrecords",
        "--json",
        work / "val.json",
        "--images",
        aligned / "images",
        "--out",
        work / "records",
        "--official-partition",
        "--size",
        artifact.input_size,
        "--framing",
        artifact.meta["framing"],
    )
    return summary, work / "records" / "val"


def test_real_annotation_converts_with_the_sample_counts(val_records):
    summary, _ = val_records
    assert summary["all"]["images"] == 5371
    assert summary["all"]["positives"] == {"eyeglasses": 265, "beard": 837, "mustache": 318, "hat": 188}
    assert (summary["train"]["images"], summary["val"]["images"]) == (4591, 780)


def test_bundled_model_scores_on_val_what_its_card_says(val_records):
    _, records = val_records
    card = load_artifact(BUNDLED_MODEL).meta.get("metrics", {}).get("val")
    if not card:
        pytest.fail("the bundled model has no validation metrics: it was not trained")
    report_dir = records.parent.parent / "report"
    invoke("evaluate", "--model", BUNDLED_MODEL, "--tfrecord", records, "--report", report_dir)
    measured = json.loads((report_dir / "metrics.json").read_text())
    assert measured["faces"] == card["faces"] >= 775  # of 780 val images (detection may miss a few)
    assert measured["macro_f1"] == pytest.approx(card["macro_f1"], abs=0.005)
    for attribute, expected in card["attributes"].items():
        assert measured["attributes"][attribute]["auc"] == pytest.approx(expected["auc"], abs=0.002)
