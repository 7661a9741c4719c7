"""The bundled model's card is generated from its artifact and its own reports, never edited by
hand; the experiments that chose its recipe are only counted and linked (research/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from facelabel.settings import BUNDLED_MODEL
from trainer.model_card import render

ROOT = Path(__file__).resolve().parent.parent
RESEARCH = ROOT / "research" / "reports"


def bundled_card() -> str:
    return render(BUNDLED_MODEL, (ROOT / "trainer" / "make_default_model.sh").read_text(), RESEARCH)


def test_bundled_card_matches_its_reports():
    card = bundled_card()
    assert card == (Path(BUNDLED_MODEL) / "MODEL.md").read_text(), (
        "facelabel/models/default/MODEL.md is stale: python -m trainer.model_card facelabel/models/default "
        "trainer/make_default_model.sh --research research/reports"
    )
    runs = json.loads((Path(BUNDLED_MODEL) / "report" / "wild.json").read_text())["runs"]
    default = next(r for r in runs if (r["detector"], r["framing"]) == ("yunet", "box"))
    assert f"macro-F1 {default['face0']['macro_f1']} at the stored thresholds" in card
    assert all(f"| {r['detector']} | {r['framing']} | {r['detect_ms_per_photo']} |" in card for r in runs)
    cv = json.loads((Path(BUNDLED_MODEL) / "report" / "crossval.json").read_text())
    assert f"| all training folders | {cv['sets']['all training folders']['faces']} |" in card


def test_the_card_names_the_rejected_recipes_its_folds_chose_among_and_links_them():
    card = bundled_card()
    rejected = sum(1 for p in (RESEARCH / "candidates").iterdir() if p.is_dir())
    assert rejected >= 1
    assert (
        f"The cross-validation that estimates this recipe also chose it over the {rejected} recipes under "
        '"Tried and rejected" on [the research page](../../../docs/research.md)' in card
    )
    assert "the held-out test is the figure no choice looked at" in card
    assert (Path(BUNDLED_MODEL) / "../../../docs/research.md").resolve() == ROOT / "docs" / "research.md"
    for experiment in ("## Tried and rejected", "## Backbones screened", "## Ensemble", "## Run to run"):
        assert experiment not in card  # rendered on the research page instead


def test_a_card_without_research_reports_claims_no_choice(tmp_path):
    model = tmp_path / "default"
    shutil.copytree(BUNDLED_MODEL, model)
    card = render(model, "make model")
    assert "chose it over" not in card and "research page" not in card
    assert "## Quality on people the model has never seen" in card
