"""Building the configured checks (the registry's built-ins, then custom ones) and their probes."""

from __future__ import annotations

from collections.abc import Sequence

from config import CheckOn, ConfigError, Settings

from .check import Check, CheckEnv, Probe
from .consistency import ConsistencyPart, ConsistencyProbe
from .custom import CustomCheck
from .registry import REGISTRY


def check_env(settings: Settings) -> CheckEnv:
    # The first monitored database's: one App per database (monitor.fleet) gives each its own.
    monitored = settings.monitored()
    on_standby = bool(monitored) and monitored[0].check_on is CheckOn.STANDBY
    return CheckEnv(
        tables=settings.tables,
        sample_limit=settings.sample_limit,
        settle_time=settings.settle_time,
        statement_timeout=settings.statement_timeout,
        chunk_rows=settings.sweep_chunk_rows,
        max_replay_lag=monitored[0].max_replay_lag if on_standby else None,
    )


def all_checks(settings: Settings) -> list[Check]:
    """Every configured check, enabled or not, built-ins first."""
    env = check_env(settings)
    checks: list[Check] = []
    for name, entry in REGISTRY.items():
        checks.append(entry.cls(name, settings.checks.builtin(name), env))
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
        related = [n for n, e in REGISTRY.items() if issubclass(e.cls, ConsistencyPart)]
        probes.append(ConsistencyProbe(parts, parts[0].env, related))
    probes.extend(c for c in checks if isinstance(c, Probe))
    return probes
