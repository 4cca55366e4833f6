"""The house rules of the layout: small modules, documented, and a front door per subpackage."""

from __future__ import annotations

import ast
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
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    names = ast.literal_eval(exported[0])
    assert names
    assert set(names) <= imported


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
