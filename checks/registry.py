"""The one registry of built-in checks: name, class, settings model, whether it gates 005.

Everything that enumerates built-in checks reads REGISTRY: settings validation, `config
reference`, scheduling, metrics, alerts, the gate's list of gating checks, the demo and the
consistency probe's related checks. Adding a built-in check is one module in checks/ (the
class and, if it needs settings beyond the common ones, a `config.CheckSettings` subclass
beside it), one entry below, its tests and its row in docs/results.md.

The layering: `config` is the bottom layer and must not import `checks`, yet validating
`[checks.<name>]` needs each built-in's settings model. So `config` offers a catalogue
(config.BUILTIN_CATALOGUE, filled through config.register_builtin) that this module fills
when `checks` is imported; ChecksSettings validates against it and fails closed (a
RuntimeError) if settings are validated before any check registered. Every entry point
imports `checks` before it loads settings (monitor/cli/main.py, tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from config import CheckSettings, CriticalCheckSettings, register_builtin

from .check import Check
from .consolidation_missed import ConsolidationMissed, ConsolidationMissedSettings
from .counter_writes import CounterWrites, CounterWritesSettings
from .dashboard_mismatch import DashboardMismatch
from .flag_conflict import FlagConflict
from .missing_worker_runs import MissingWorkerRuns
from .premature_consolidation import PrematureConsolidation
from .stale_partitions import StalePartitions, StalePartitionsSettings


@dataclass(frozen=True)
class BuiltinCheck:
    """One built-in check: its name (config table, metrics label, alert key) and parts."""

    name: str
    cls: type[Check]
    settings: type[CheckSettings] = CheckSettings
    #: Migration 005 needs this check's clean history (gate.checks may add others).
    gating: bool = False


class Registry(Mapping[str, BuiltinCheck]):
    """The built-in checks by name, in the order they are listed, run and shown."""

    def __init__(self, *entries: BuiltinCheck) -> None:
        self._entries = {e.name: e for e in entries}
        if len(self._entries) != len(entries):
            raise ValueError("two built-in checks share a name")

    def __getitem__(self, name: str) -> BuiltinCheck:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    @property
    def gating(self) -> tuple[str, ...]:
        """The checks whose clean history migration 005 needs, in registry order."""
        return tuple(e.name for e in self._entries.values() if e.gating)


REGISTRY = Registry(
    BuiltinCheck("dashboard_mismatch", DashboardMismatch, CriticalCheckSettings, gating=True),
    BuiltinCheck("missing_worker_runs", MissingWorkerRuns, gating=True),
    BuiltinCheck("flag_conflict", FlagConflict, CriticalCheckSettings, gating=True),
    BuiltinCheck("stale_partitions", StalePartitions, StalePartitionsSettings),
    BuiltinCheck("counter_writes", CounterWrites, CounterWritesSettings, gating=True),
    BuiltinCheck("consolidation_missed", ConsolidationMissed, ConsolidationMissedSettings),
    BuiltinCheck("premature_consolidation", PrematureConsolidation, CriticalCheckSettings),
)

for _entry in REGISTRY.values():
    register_builtin(_entry.name, _entry.settings, gating=_entry.gating)
