"""The wheel ships the bundled model, its card and its own reports, and nothing of the research
that chose it (research/ stays in the repository)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path("facelabel") / "models" / "default"
# the model's own files: what the card renders (its crossval estimate, held-out test, cost, wild photos)
OWN = {
    "MODEL.md",
    "model.json",
    "model.keras",
    *(f"report/{r}.json" for r in ("crossval", "test", "throughput", "wild")),
}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_the_package_ships_the_model_and_only_its_own_reports(tmp_path):
    """setuptools' build_py lays out what a wheel holds, by pyproject's package-data."""
    build = [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib"]
    subprocess.run([*build, str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    assert _files(ROOT / MODEL) == OWN  # nothing rejected lies beside the model
    assert _files(tmp_path / MODEL) == OWN
    assert not (tmp_path / "research").exists() and not (tmp_path / "bench").exists()
