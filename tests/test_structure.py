"""Code a newcomer can read: no function past a screenful, and no circle of imports (which
forces imports to hide inside functions and makes the modules load-order dependent)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("facelabel", "worker", "trainer", "db")
MAX_FUNCTION_LINES = 60


def _sources(root: Path):
    """The packages' Python files, except Alembic's migrations (append-only history)."""
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.relative_to(root).parts:
                yield path


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def long_functions(root: Path) -> list[str]:
    found = []
    for path in _sources(root):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]):
    """The project modules one import statement names: a submodule where ``from X import Y``
    names one, else the package itself."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = module.split(".")[: len(module.split(".")) - node.level + is_package]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module
    for alias in node.names:
        candidate = f"{source}.{alias.name}"
        yield candidate if candidate in known else source


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (in functions and under
    TYPE_CHECKING too: an import hidden there still closes a circle)."""
    files = {_module_name(path, root): path for path in _sources(root)}
    known = set(files)
    graph = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported(node, module, is_package, known):
                    while name and name not in known:  # a name inside a module: the module
                        name = name.rpartition(".")[0]
                    if name and name != module:
                        targets.add(name)
        graph[module] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan's algorithm), sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_no_function_is_longer_than_a_screen():
    assert long_functions(ROOT) == []


def test_no_modules_import_each_other_in_a_circle():
    assert import_cycles(import_graph(ROOT)) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return tmp_path


@pytest.mark.parametrize(
    "files",
    [
        {  # hidden inside a function
            "worker/__init__.py": "",
            "worker/a.py": "from worker.b import f\n",
            "worker/b.py": "def f():\n    from worker.a import g\n",
        },
        {  # under TYPE_CHECKING, relative, across packages through a submodule
            "db/__init__.py": "",
            "db/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
            "db/b.py": "from trainer import c\n",
            "trainer/__init__.py": "",
            "trainer/c.py": "import db.a\n",
        },
    ],
)
def test_a_circle_is_found_however_the_import_is_written(tmp_path, files):
    assert len(import_cycles(import_graph(_tree(tmp_path, files)))) == 1


def test_a_package_importing_its_own_modules_is_no_circle(tmp_path):
    root = _tree(
        tmp_path,
        {
            "facelabel/__init__.py": "",
            "facelabel/cli/__init__.py": "from facelabel.cli import jobs\n",
            "facelabel/cli/jobs.py": "from facelabel.cli.common import option\n",
            "facelabel/cli/common.py": "option = None\n",
        },
    )
    assert import_cycles(import_graph(root)) == []


def test_a_long_function_is_named_and_migrations_are_exempt(tmp_path):
    body = "def long():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    root = _tree(tmp_path, {"trainer/fit.py": body, "db/migrations/versions/0001.py": body})
    assert long_functions(root) == [f"trainer/fit.py:1 long ({MAX_FUNCTION_LINES + 1} lines)"]
