"""The check catalogue: built-in names to classes, and building the probes for a run."""

from __future__ import annotations

from collections.abc import Sequence

from config import BUILTIN_CHECKS, ConfigError, Settings

from .check import Check, CheckEnv, Probe
from .consistency import ConsistencyPart, ConsistencyProbe
from .counter_writes import CounterWrites
from .custom import CustomCheck
from .dashboard_mismatch import DashboardMismatch
from .flag_conflict import FlagConflict
from .missing_worker_runs import MissingWorkerRuns
from .stale_partitions import StalePartitions

BUILTINS: dict[str, type[Check]] = {
    "dashboard_mismatch": DashboardMismatch,
    "missing_worker_runs": MissingWorkerRuns,
    "flag_conflict": FlagConflict,
    "stale_partitions": StalePartitions,
    "counter_writes": CounterWrites,
}
assert tuple(BUILTINS) == BUILTIN_CHECKS


def check_env(settings: Settings) -> CheckEnv:
    return CheckEnv(
        tables=settings.tables,
        sample_limit=settings.sample_limit,
        settle_time=settings.settle_time,
        statement_timeout=settings.statement_timeout,
    )


def all_checks(settings: Settings) -> list[Check]:
    """Every configured check, enabled or not, built-ins first."""
    env = check_env(settings)
    checks: list[Check] = []
    for name, cls in BUILTINS.items():
        checks.append(cls(name, settings.checks.builtin(name), env))
    checks.extend(CustomCheck(c.name, c, env) for c in settings.checks.custom)
    return checks


def select_checks(settings: Settings, names: Sequence[str] = ()) -> list[Check]:
    """The enabled checks, or exactly the named ones (a named check runs even if disabled).

    Raises ConfigError for a name that is not configured.
    """
    checks = all_checks(settings)
    if not names:
        return [c for c in checks if c.settings.enabled]
    by_name = {c.name: c for c in checks}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name)
        raise ConfigError(f"unknown check {unknown[0]!r}; configured checks are: {known}")
    return [by_name[n] for n in dict.fromkeys(names)]


def build_probes(checks: Sequence[Check]) -> list[Probe]:
    """One probe per check, except that consistency parts share one sweep."""
    parts = [c for c in checks if isinstance(c, ConsistencyPart)]
    probes: list[Probe] = []
    if parts:
        related = [n for n, cls in BUILTINS.items() if issubclass(cls, ConsistencyPart)]
        probes.append(ConsistencyProbe(parts, parts[0].env, related))
    probes.extend(c for c in checks if isinstance(c, Probe))
    return probes
