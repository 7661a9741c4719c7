"""A model's macro-F1 for a person it never saw, and what that figure was measured on.

Two measurements qualify: cross-validation by person (the shipped model's
``report/crossval.json``, pooled over every training folder) and a retraining gate whose
held-out faces were split by person. A validation set chosen by image does not: the same
person can sit on both sides of it.
"""

from __future__ import annotations

import json
from pathlib import Path

CROSSVAL_REPORT = Path("report") / "crossval.json"
POOLED = "all training folders"  # crossval.json's set for a new person: every training folder's faces
BY_PERSON = "by person"  # a gate's held-out faces: every person's faces on one side
BY_IMAGE = "by image"


def crossval_estimate(directory: str | Path) -> dict | None:
    """The pooled cross-validated macro-F1 of the model at ``directory``; None without the report."""
    try:
        report = json.loads((Path(directory) / CROSSVAL_REPORT).read_text())
        pooled = report["sets"][POOLED]
        return {
            "macro_f1": pooled["macro_f1"],
            "macro_f1_95": pooled["macro_f1_95"],
            "from": f"{report['folds']}-fold cross-validation by person: "
            f"{pooled['faces']:,} faces of {pooled['people']:,} people",
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def gate_estimate(metrics: dict | None) -> dict | None:
    """A retraining gate's figure for its challenger when the held-out faces were split by person."""
    if not metrics or metrics.get("split") != BY_PERSON:
        return None
    return {
        "macro_f1": metrics["macro_f1"],
        "macro_f1_95": metrics["macro_f1_95"],
        "from": f"retraining gate: {metrics['faces']:,} faces of {metrics['people']:,} people "
        "held out by person",
    }
