"""The house rules of the layout: small modules, documented, and a front door per subpackage."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "checks", "alerts", "monitor")
MAX_LINES = 400
MODULES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
SUBPACKAGES = sorted(p.parent for p in (ROOT / "monitor").glob("*/__init__.py"))


def test_the_layout_is_what_this_test_reads():
    assert len(MODULES) > 50
    names = {p.name for p in SUBPACKAGES}
    assert {"store", "service", "gate", "cli", "demo", "db", "doctor"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small_and_says_what_it_is(path: Path):
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{lines} lines: split it by role"
    doc = ast.get_docstring(ast.parse(text))
    assert doc, "a module starts with a docstring saying what it is for"
    assert doc.splitlines()[0].strip(), "the docstring's first line is the summary"


def _front_door_imports(tree: ast.Module) -> set[str]:
    """Names a front door imports at its top, or under `if TYPE_CHECKING:` for a lazy one
    (its module-level __getattr__ loads them on first use; the test below resolves each)."""
    body = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            body.extend(node.body)
    return {
        alias.asname or alias.name
        for node in body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize("package", SUBPACKAGES, ids=lambda p: p.name)
def test_each_monitor_subpackage_has_a_front_door(package: Path):
    """`__init__` names what the subpackage offers in `__all__`, and every name is defined."""
    tree = ast.parse((package / "__init__.py").read_text())
    exported = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert exported, f"monitor/{package.name}/__init__.py has no __all__"
    names = ast.literal_eval(exported[0])
    assert names
    assert set(names) <= _front_door_imports(tree)


LAZY_FRONT_DOORS = sorted(
    p.parent
    for p in [
        *(ROOT / pkg / "__init__.py" for pkg in PACKAGES),
        *(ROOT / "monitor").glob("*/__init__.py"),
    ]
    if "lazy_exports(" in p.read_text()
)


def test_some_front_doors_are_lazy():
    assert {p.relative_to(ROOT).as_posix() for p in LAZY_FRONT_DOORS} >= {"config", "monitor/gate"}


@pytest.mark.parametrize("package", LAZY_FRONT_DOORS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_lazy_front_door_serves_every_name_it_exports(package: Path):
    """Each name of `__all__` resolves, to the object of the module its import names, and the
    front door imports (for type checkers) exactly the names it exports."""
    dotted = ".".join(package.relative_to(ROOT).parts)
    module = importlib.import_module(dotted)
    tree = ast.parse((package / "__init__.py").read_text())
    assert _front_door_imports(tree) - {"annotations", "TYPE_CHECKING", "lazy_exports"} == set(
        module.__all__
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            origin = importlib.import_module(f"{dotted}.{node.module}")
            for alias in node.names:
                assert getattr(module, alias.name) is getattr(origin, alias.name), alias.name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = module.no_such_name


def test_tests_mirror_the_packages():
    """A test module for monitor/<sub>/ lives in tests/monitor/<sub>/."""
    for package in SUBPACKAGES:
        mirror = ROOT / "tests" / "monitor" / package.name
        assert (mirror / "__init__.py").exists(), f"tests/monitor/{package.name}/ is missing"
        assert list(mirror.glob("test_*.py")), f"tests/monitor/{package.name}/ has no tests"


def test_subpackages_are_entered_by_their_front_door():
    """Code outside monitor/<sub>/ imports `monitor.<sub>`, never one of its modules."""
    subs = {p.name for p in SUBPACKAGES}
    through_side_doors = []
    for path in MODULES:
        rel = path.relative_to(ROOT).parts
        home = rel[1] if rel[0] == "monitor" and len(rel) > 2 else None
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                inside = len(parts) > 2 and parts[0] == "monitor" and parts[1] in subs
                if inside and parts[1] != home:
                    through_side_doors.append(f"{'/'.join(rel)}: {node.module}")
    assert through_side_doors == []


def test_layers_import_downwards_only():
    """config <- checks <- alerts <- monitor: a layer never imports one above it."""
    order = {name: i for i, name in enumerate(PACKAGES)}
    upward = []
    for path in MODULES:
        layer = path.relative_to(ROOT).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                top = name.split(".")[0]
                if top in order and order[top] > order[layer]:
                    upward.append(f"{path.relative_to(ROOT)}: {name}")
    assert upward == []
