"""The layers' arrows point one way: CLI → worker, trainer → db → core (facelabel/); the review
app (facelabel/web) is a front on db and core that loads no model and sends no work. The research
that chose the model (research/) stands beside them all: nothing in the product or its benchmarks
imports it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# For each layer, the top-level modules its code may never import (at any depth of the file).
FORBIDDEN = {
    "core": {"worker", "trainer", "db", "facelabel.cli", "facelabel.web", "facelabel.watch", "research"},
    "watch": {"trainer", "facelabel.cli", "facelabel.web", "research"},  # a front making jobs
    "web": {"worker", "trainer", "facelabel.cli", "celery", "tensorflow", "keras", "research"},
    "db": {
        "worker",
        "trainer",
        "facelabel.cli",
        "redis",
        "celery",
        "kombu",
        "tensorflow",
        "keras",
        "research",
    },
    "trainer": {"worker", "facelabel.cli", "celery", "research"},
    "worker": {"facelabel.cli", "research"},
    "cli": {"research"},
    "bench": {"research"},
}
# The one module allowed to call across: the Celery task that runs a training.
ALLOWED = {("worker/tasks.py", "trainer")}


def _layer(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "facelabel":
        if parts[1] in ("web", "watch"):
            return parts[1]
        return "cli" if parts[1] in ("cli", "__main__.py") else "core"
    return parts[0] if parts[0] in FORBIDDEN else None


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _violations() -> list[str]:
    found = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        layer = _layer(path)
        if layer is None or "migrations" in path.parts:
            continue
        relative = str(path.relative_to(ROOT))
        for name in _imports(path):
            for banned in FORBIDDEN[layer]:
                if (name == banned or name.startswith(banned + ".")) and (relative, banned) not in ALLOWED:
                    found.append(f"{relative} ({layer}) imports {name}")
    return found


def test_imports_point_down_the_layers():
    assert _violations() == []


@pytest.mark.parametrize(
    "source, layer, expected",
    [
        ("from worker.lease import Lease\n", "trainer", "imports worker.lease"),
        ("import redis\n", "db", "imports redis"),
        ("def f():\n    from facelabel.cli import main\n", "worker", "imports facelabel.cli"),
        ("from facelabel import cli\n", "core", "imports facelabel.cli"),
        ("import tensorflow\n", "web", "imports tensorflow"),
        ("from research.paired import same_faces\n", "trainer", "imports research.paired"),
        ("def f():\n    import research\n", "bench", "imports research"),
        ("from research import card\n", "cli", "imports research"),
    ],
)
def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch, source, layer, expected):
    folder = {"core": "facelabel", "web": "facelabel/web", "cli": "facelabel/cli"}.get(layer, layer)
    module = tmp_path / folder / "bad_module.py"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert [v for v in _violations() if expected in v]
