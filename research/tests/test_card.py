"""docs/research.md is generated from research/reports/ beside the shipped model's own reports,
never edited by hand, and each experiment is reported with the rule it was judged by."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facelabel.settings import BUNDLED_MODEL
from research.card import NETWORK, render

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "research" / "reports"
PAGE = ROOT / "docs" / "research.md"


@pytest.fixture
def copies(tmp_path):
    """The shipped model and the research reports, copied to be changed: (model, reports)."""
    shutil.copytree(BUNDLED_MODEL, tmp_path / "default")
    shutil.copytree(REPORTS, tmp_path / "reports")
    return tmp_path / "default", tmp_path / "reports"


def page(model: Path, reports: Path) -> str:
    return render(model, reports, "", reports.parent / "research.md")


def test_research_page_matches_its_reports():
    text = render(BUNDLED_MODEL, REPORTS, (ROOT / "research" / "run_experiments.sh").read_text(), PAGE)
    assert text == PAGE.read_text(), (
        "docs/research.md is stale: python -m research.card facelabel/models/default research/reports "
        "research/run_experiments.sh docs/research.md"
    )
    assert "[its card](../facelabel/models/default/MODEL.md)" in text
    comparisons = json.loads((REPORTS / "framing.json").read_text())["comparisons"]
    assert text.count("| detected |") == len(comparisons) >= 1
    for candidate in (REPORTS / "candidates").iterdir():
        pooled = json.loads((candidate / "crossval.json").read_text())["sets"]["all training folders"]
        theirs = json.loads((candidate / "model.json").read_text())
        network = f"**`{candidate.name}`**: backbone `{theirs['backbone']}` at {theirs['input_size']} px"
        assert network in text and f"| {pooled['macro_f1']} (" in text
        line = next(line for line in text.splitlines() if line.startswith(network))
        gamma = theirs["training"]["recipe"].get("focal_gamma")
        assert (f"focal loss (gamma {gamma})" in line) == bool(gamma)  # the loss it was trained with
    repeats = list((REPORTS / "repeats").glob("*"))
    assert repeats
    for repeat in repeats:
        pooled = json.loads((repeat / "crossval.json").read_text())["sets"]["all training folders"]
        assert f"| `{repeat.name}` | {pooled['macro_f1']} |" in text
    difference = json.loads((REPORTS / "wild_thresholds.json").read_text())["own_minus_shipped"]
    assert f"{difference[0]:+.4f} (95 % {difference[1]:+.4f} to {difference[2]:+.4f})" in text


def test_a_repeat_must_be_the_shipped_recipe_with_another_seed(copies):
    model, reports = copies
    repeat = reports / "repeats" / "another-seed"
    shutil.rmtree(repeat.parent)
    repeat.mkdir(parents=True)
    shutil.copy(model / "report" / "crossval.json", repeat)
    meta = json.loads((model / "model.json").read_text())
    recipe = meta["training"]["recipe"]
    recipe["seed"] += 1
    recipe["steps_per_epoch"] = None  # a fold model's file: its epochs are the folds' length
    (repeat / "model.json").write_text(json.dumps(meta))
    assert f"| {recipe['seed']} | `another-seed` |" in page(model, reports)
    meta["input_size"] += 32
    (repeat / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not the shipped model's recipe and network"):
        page(model, reports)
    meta["input_size"] -= 32
    recipe["fine_tune_epochs"] += 1
    (repeat / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not the shipped model's recipe"):
        page(model, reports)


def test_a_candidate_of_another_network_is_costed_by_a_measured_run_of_that_network(copies):
    """A candidate without its own throughput.json borrows (and names) the figures of another
    candidate with its network; with none, the page is refused."""
    model, reports = copies
    candidates = reports / "candidates"

    def network(folder):
        meta = json.loads((folder / "model.json").read_text())
        return [meta[k] for k in NETWORK]

    measured = next(
        c
        for c in sorted(candidates.iterdir())
        if (c / "throughput.json").exists() and network(c) != network(model)
    )
    borrower = candidates / "a-borrower"
    borrower.mkdir()
    for name in ("crossval.json", "model.json"):
        shutil.copy(measured / name, borrower)
    line = next(x for x in page(model, reports).splitlines() if x.startswith("**`a-borrower`**"))
    cost = json.loads((measured / "throughput.json").read_text())
    assert f"{cost['model_mb']} MB (the network of `{measured.name}`)" in line
    (measured / "throughput.json").unlink()
    with pytest.raises(ValueError, match="another network than the shipped model's needs a throughput.json"):
        page(model, reports)


def test_an_ensemble_is_judged_by_its_rule_and_costed_by_every_members_network(copies):
    """research/reports/ensemble.json (research/ensemble_oof.py) gives the page its rows, the
    verdict it recorded and the raw forward rate of running each member's measured network in turn."""
    model, reports = copies
    meta = json.loads((model / "model.json").read_text())
    other = next(c for c in sorted((reports / "candidates").iterdir()) if (c / "throughput.json").exists())
    theirs = json.loads((other / "model.json").read_text())
    members = [{"work": "cv-a", **{k: meta[k] for k in NETWORK}, "seed": 1, "macro_f1": {"pooled": 0.81}}]
    members.append(
        {
            "work": "cv-b",
            **{k: theirs[k] for k in NETWORK},
            "seed": 0,
            "macro_f1": {"pooled": 0.79, "wild": 0.77},
        }
    )
    ensemble = json.loads((model / "report" / "crossval.json").read_text()) | {
        "members": members,
        "best_member": "cv-a",
        "minus_best_member": [0.004, -0.001, 0.009],
        "min_gain": 0.005,
        "passes": False,
    }
    (reports / "ensemble.json").write_text(json.dumps(ensemble))
    text = page(model, reports)
    own = json.loads((model / "report" / "throughput.json").read_text())["runtimes"]["keras"]["raw"]
    other_speed = json.loads((other / "throughput.json").read_text())["runtimes"]["keras"]["raw"]
    assert f"keras {1 / (1 / own + 1 / other_speed):.1f} (the shipped model: {own})" in text
    assert (
        "seed 0; macro-F1 in the run averaged: 0.79 pooled, 0.77 wild)" in text
        and "best member `cv-a`: +0.0040" in text
        and "it fails: not shipped" in text
    )

    members[1]["input_size"] = 999  # a network no run measured
    (reports / "ensemble.json").write_text(json.dumps(ensemble))
    with pytest.raises(ValueError, match="no throughput.json measures the network of cv-b"):
        page(model, reports)


def test_training_on_wild_photos_is_reported_with_the_rule_it_was_judged_by(copies):
    """research/reports/wild_training.json (research/wild_training.py) gives the page both runs'
    rows, the differences face by face and the verdict it recorded."""
    model, reports = copies
    (reports / "wild_training.json").unlink()
    assert "## Trained on wild photos" not in page(model, reports)
    sets = json.loads((model / "report" / "crossval.json").read_text())["sets"]
    check = {
        "runs": {"scored": "cv-plain", "trained": "cv-wild"},
        "seed": 2,
        "sets": {"scored": {"wild": sets["wild"]}, "trained": {"wild": sets["wild"]}},
        "trained_minus_scored": {
            "wild": [0.031, 0.004, 0.06],
            "every folder but wild": [-0.012, -0.02, -0.004],
        },
        "min_gain": 0.025,
        "max_loss": 0.01,
        "passes": False,
    }
    (reports / "wild_training.json").write_text(json.dumps(check))
    text = page(model, reports)
    assert f"| `cv-wild`: wild | {sets['wild']['faces']} |" in text
    assert "wild +0.0310 (95 % +0.0040 to +0.0600); every folder but wild -0.0120" in text
    assert (
        "at least +0.025 with the interval above 0 and the other faces lose no more than 0.01; it fails"
        in text
    )


def test_a_recipe_change_is_reported_with_the_rule_it_was_judged_by(copies):
    """Each report in research/reports/paired/ (research/paired_runs.py) gives the page its change,
    both runs' rows, the differences face by face and the verdict it recorded."""
    model, reports = copies
    shutil.rmtree(reports / "paired")
    assert "## Recipe changes judged face by face" not in page(model, reports)
    sets = json.loads((model / "report" / "crossval.json").read_text())["sets"]

    def check(run, change, gain, passes):
        return {
            "runs": {"base": "cv-base", "changed": run},
            "change": change,
            "sets": {"base": {"wild": sets["wild"]}, "changed": {"wild": sets["wild"]}},
            "changed_minus_base": {"all training folders": [gain, 0.001, 0.04], "wild": [-0.01, -0.05, 0.03]},
            "min_gain": 0.015,
            "passes": passes,
        }

    (reports / "paired").mkdir()
    (reports / "paired" / "smoothing.json").write_text(
        json.dumps(check("cv-ls", {"label_smoothing": [None, 0.1]}, 0.02, True))
    )
    (reports / "paired" / "focal.json").write_text(
        json.dumps(check("cv-focal", {"focal_gamma": [0.0, 2.0]}, 0.005, False))
    )
    text = page(model, reports)
    smoothing, focal = text.index("### label_smoothing None → 0.1"), text.index("### focal_gamma 0.0 → 2.0")
    assert "`cv-ls` changes `cv-base`" in text[smoothing:] and "`cv-focal` changes `cv-base`" in text[focal:]
    assert f"| `cv-ls`: wild | {sets['wild']['faces']} |" in text
    assert "all training folders +0.0200 (95 % +0.0010 to +0.0400); wild -0.0100" in text[smoothing:]
    assert "at least +0.015 with the interval above 0; it passes" in text[smoothing:]
    assert "all training folders +0.0050 (95 % +0.0010 to +0.0400)" in text[focal:smoothing]
    assert "at least +0.015 with the interval above 0; it fails: not adopted" in text[focal:smoothing]
