"""The bundled model's card is generated from its artifact and reports, never edited by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facelabel.settings import BUNDLED_MODEL
from trainer.model_card import NETWORK, render

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_card_matches_its_reports():
    card = render(BUNDLED_MODEL, (ROOT / "trainer" / "make_default_model.sh").read_text())
    assert card == (Path(BUNDLED_MODEL) / "MODEL.md").read_text(), (
        "facelabel/models/default/MODEL.md is stale: python -m trainer.model_card facelabel/models/default "
        "trainer/make_default_model.sh"
    )
    runs = json.loads((Path(BUNDLED_MODEL) / "report" / "wild.json").read_text())["runs"]
    default = next(r for r in runs if (r["detector"], r["framing"]) == ("yunet", "box"))
    assert f"macro-F1 {default['face0']['macro_f1']} at the stored thresholds" in card
    assert all(f"| {r['detector']} | {r['framing']} | {r['detect_ms_per_photo']} |" in card for r in runs)
    comparisons = json.loads((Path(BUNDLED_MODEL) / "report" / "framing.json").read_text())["comparisons"]
    assert card.count("| detected |") == len(comparisons) >= 1
    for candidate in (Path(BUNDLED_MODEL) / "report" / "candidates").iterdir():
        pooled = json.loads((candidate / "crossval.json").read_text())["sets"]["all training folders"]
        theirs = json.loads((candidate / "model.json").read_text())
        network = f"**`{candidate.name}`**: backbone `{theirs['backbone']}` at {theirs['input_size']} px"
        assert network in card and f"| {pooled['macro_f1']} (" in card
        line = next(line for line in card.splitlines() if line.startswith(network))
        gamma = theirs["training"]["recipe"].get("focal_gamma")
        assert (f"focal loss (gamma {gamma})" in line) == bool(gamma)  # the loss it was trained with
    candidates = sum(1 for _ in (Path(BUNDLED_MODEL) / "report" / "candidates").iterdir())
    assert f'chosen over the {candidates} under "Tried and rejected" by these same folds' in card
    repeats = list((Path(BUNDLED_MODEL) / "report" / "repeats").glob("*"))
    for repeat in repeats:
        pooled = json.loads((repeat / "crossval.json").read_text())["sets"]["all training folders"]
        assert f"| `{repeat.name}` | {pooled['macro_f1']} |" in card
    assert ("**Run to run.** Not measured for this recipe" in card) == (not repeats)


def test_a_repeat_must_be_the_shipped_recipe_with_another_seed(tmp_path):
    model = tmp_path / "default"
    shutil.copytree(BUNDLED_MODEL, model)
    repeat = model / "report" / "repeats" / "another-seed"
    shutil.rmtree(repeat.parent, ignore_errors=True)
    repeat.mkdir(parents=True)
    shutil.copy(model / "report" / "crossval.json", repeat)
    meta = json.loads((model / "model.json").read_text())
    recipe = meta["training"]["recipe"]
    recipe["seed"] += 1
    recipe["steps_per_epoch"] = None  # a fold model's file: its epochs are the folds' length
    (repeat / "model.json").write_text(json.dumps(meta))
    assert f"| {recipe['seed']} | `another-seed` |" in render(model, "")
    meta["input_size"] += 32
    (repeat / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not this model's recipe and network"):
        render(model, "")
    meta["input_size"] -= 32
    recipe["fine_tune_epochs"] += 1
    (repeat / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not this model's recipe"):
        render(model, "")


def test_a_candidate_of_another_network_is_costed_by_a_measured_run_of_that_network(tmp_path):
    """A candidate without its own throughput.json borrows (and names) the figures of another
    candidate with its network; with none, the card is refused."""
    model = tmp_path / "default"
    shutil.copytree(BUNDLED_MODEL, model)
    candidates = model / "report" / "candidates"

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
    line = next(x for x in render(model, "").splitlines() if x.startswith("**`a-borrower`**"))
    cost = json.loads((measured / "throughput.json").read_text())
    assert f"{cost['model_mb']} MB (the network of `{measured.name}`)" in line
    (measured / "throughput.json").unlink()
    with pytest.raises(ValueError, match="another network than this model's needs a throughput.json"):
        render(model, "")


def test_an_ensemble_is_judged_by_its_rule_and_costed_by_every_members_network(tmp_path):
    """report/ensemble.json (bench/ensemble_oof.py) gives the card its rows, the verdict it
    recorded and the raw forward rate of running each member's measured network in turn."""
    model = tmp_path / "default"
    shutil.copytree(BUNDLED_MODEL, model)
    meta = json.loads((model / "model.json").read_text())
    other = next(
        c for c in sorted((model / "report" / "candidates").iterdir()) if (c / "throughput.json").exists()
    )
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
    (model / "report" / "ensemble.json").write_text(json.dumps(ensemble))
    card = render(model, "")
    own = json.loads((model / "report" / "throughput.json").read_text())["runtimes"]["keras"]["raw"]
    other_speed = json.loads((other / "throughput.json").read_text())["runtimes"]["keras"]["raw"]
    assert f"keras {1 / (1 / own + 1 / other_speed):.1f} (this model: {own})" in card
    assert (
        "seed 0; macro-F1 in the run averaged: 0.79 pooled, 0.77 wild)" in card
        and "best member `cv-a`: +0.0040" in card
        and "it fails: not shipped" in card
    )

    members[1]["input_size"] = 999  # a network no run measured
    (model / "report" / "ensemble.json").write_text(json.dumps(ensemble))
    with pytest.raises(ValueError, match="no throughput.json measures the network of cv-b"):
        render(model, "")


def test_training_on_wild_photos_is_reported_with_the_rule_it_was_judged_by(tmp_path):
    """report/wild_training.json (bench/wild_training.py) gives the card both runs' rows, the
    differences face by face and the verdict it recorded."""
    model = tmp_path / "default"
    shutil.copytree(BUNDLED_MODEL, model)
    (model / "report" / "wild_training.json").unlink(missing_ok=True)
    assert "## Trained on wild photos" not in render(model, "")
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
    (model / "report" / "wild_training.json").write_text(json.dumps(check))
    card = render(model, "")
    assert f"| `cv-wild`: wild | {sets['wild']['faces']} |" in card
    assert "wild +0.0310 (95 % +0.0040 to +0.0600); every folder but wild -0.0120" in card
    assert (
        "at least +0.025 with the interval above 0 and the other faces lose no more than 0.01; it fails"
        in card
    )


def test_a_recipe_change_is_reported_with_the_rule_it_was_judged_by(tmp_path):
    """Each report in report/paired/ (bench/paired_runs.py) gives the card its change, both runs'
    rows, the differences face by face and the verdict it recorded."""
    model = tmp_path / "default"
    shutil.copytree(BUNDLED_MODEL, model)
    shutil.rmtree(model / "report" / "paired", ignore_errors=True)
    assert "## Recipe changes judged face by face" not in render(model, "")
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

    (model / "report" / "paired").mkdir()
    (model / "report" / "paired" / "smoothing.json").write_text(
        json.dumps(check("cv-ls", {"label_smoothing": [None, 0.1]}, 0.02, True))
    )
    (model / "report" / "paired" / "focal.json").write_text(
        json.dumps(check("cv-focal", {"focal_gamma": [0.0, 2.0]}, 0.005, False))
    )
    card = render(model, "")
    smoothing, focal = card.index("### label_smoothing None → 0.1"), card.index("### focal_gamma 0.0 → 2.0")
    assert "`cv-ls` changes `cv-base`" in card[smoothing:] and "`cv-focal` changes `cv-base`" in card[focal:]
    assert f"| `cv-ls`: wild | {sets['wild']['faces']} |" in card
    assert "all training folders +0.0200 (95 % +0.0010 to +0.0400); wild -0.0100" in card[smoothing:]
    assert "at least +0.015 with the interval above 0; it passes" in card[smoothing:]
    assert "all training folders +0.0050 (95 % +0.0010 to +0.0400)" in card[focal:smoothing]
    assert "at least +0.015 with the interval above 0; it fails: not adopted" in card[focal:smoothing]
