"""The registry of built-in checks: the one list settings, gate, docs and catalogue read."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from checks import REGISTRY, all_checks
from checks.stale_partitions import StalePartitionsSettings
from config import BUILTIN_CATALOGUE, BuiltinCatalogue, CheckSettings, ConfigError, load_settings
from monitor.gate.plans import GATING_CHECKS

ROOT = Path(__file__).resolve().parents[2]


def test_settings_know_every_registered_check_by_its_model():
    assert BUILTIN_CATALOGUE.names == REGISTRY.names
    for name, entry in REGISTRY.items():
        assert BUILTIN_CATALOGUE.model(name) is entry.settings
        assert type(load_settings().checks.builtin(name)) is entry.settings


def test_the_gate_and_the_gate_settings_read_the_registry():
    assert REGISTRY.gating == GATING_CHECKS
    assert load_settings().gate.checks == REGISTRY.gating
    assert "stale_partitions" not in REGISTRY.gating


def test_every_built_in_is_built_in_registry_order():
    names = [c.name for c in all_checks(load_settings())]
    assert names == list(REGISTRY)
    for check in all_checks(load_settings()):
        assert isinstance(check, REGISTRY[check.name].cls)


def test_typed_access_to_a_check_s_own_settings(monkeypatch):
    monkeypatch.setenv("DQ_CHECKS__STALE_PARTITIONS__THRESHOLD", "45m")
    checks = load_settings().checks
    assert checks.of("stale_partitions", StalePartitionsSettings).threshold == timedelta(minutes=45)
    with pytest.raises(TypeError, match="not StalePartitionsSettings"):
        checks.of("flag_conflict", StalePartitionsSettings)
    with pytest.raises(KeyError):
        checks.builtin("nope")


def test_a_whole_check_table_in_one_variable_is_json(monkeypatch):
    monkeypatch.setenv("DQ_CHECKS__STALE_PARTITIONS", '{"threshold": "1h", "enabled": false}')
    own = load_settings().checks.of("stale_partitions", StalePartitionsSettings)
    assert (own.threshold, own.enabled) == (timedelta(hours=1), False)
    monkeypatch.setenv("DQ_CHECKS__STALE_PARTITIONS", "{nope")
    with pytest.raises(ConfigError, match=r"checks.stale_partitions is not valid JSON"):
        load_settings()


def test_a_name_is_registered_once():
    catalogue = BuiltinCatalogue()
    catalogue.register("mine", CheckSettings)
    catalogue.register("mine", CheckSettings)  # importing twice is harmless
    with pytest.raises(ValueError, match="already registered"):
        catalogue.register("mine", StalePartitionsSettings)
    with pytest.raises(ValueError, match="not a valid built-in check name"):
        catalogue.register("custom", CheckSettings)


def test_validation_before_registration_fails_closed():
    with pytest.raises(RuntimeError, match="no built-in checks are registered"):
        BuiltinCatalogue().schema()
    done = subprocess.run(
        [sys.executable, "-c", "import config; config.load_settings()"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "RuntimeError: no built-in checks are registered" in done.stderr


def test_the_checks_page_has_one_row_per_built_in_check():
    results = (ROOT / "docs" / "results.md").read_text()
    table = results.split("\n## Checks\n", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert rows == list(REGISTRY)
