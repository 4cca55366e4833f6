"""The four layers import from this checkout, and the built wheel holds them and nothing else."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "checks", "alerts", "monitor")


@pytest.mark.parametrize("name", PACKAGES)
def test_layer_imports_from_this_project(name):
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(ROOT), module.__file__
    # No other installed distribution claims a top-level package of the same name.
    owners = set(importlib.metadata.packages_distributions().get(name, [])) - {"dq-monitor"}
    assert owners == set(), f"{name} is also provided by {owners}"


def test_layers_have_a_docstring_and_a_pinned_public_surface():
    for name in PACKAGES:
        module = importlib.import_module(name)
        assert module.__doc__, name
        for exported in getattr(module, "__all__", []):
            assert hasattr(module, exported), f"{name}.{exported}"


def test_console_script_is_declared():
    scripts = importlib.metadata.distribution("dq-monitor").entry_points
    assert any(ep.name == "dq-monitor" and ep.value == "monitor.cli:main" for ep in scripts)


@pytest.mark.slow
@pytest.mark.registry
def test_wheel_contains_the_four_packages_and_no_tests(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("dq_monitor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("dq_monitor-")}
    assert tops == set(PACKAGES)
    assert "checks/reference/schema.sql" in names
    assert "checks/reference/005_remove_counter_columns.sql" in names
    assert not any(n.startswith(("tests/", "bench/", "examples/", "deploy/")) for n in names)
