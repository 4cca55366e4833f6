"""Retention bounded below by the gate: how much history it reads, and pruning past that."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from checks import all_checks
from config import Settings, format_duration, gate_history_floor
from monitor.gate.plans import PLANS, service_key
from monitor.gate.rules import GateRules
from monitor.store import PruneResult, StateStore

log = logging.getLogger(__name__)
Progress = Callable[[str, int], object]  # (table, rows deleted from it so far)


def evidence_floor(settings: Settings, store: StateStore, now: dt.datetime) -> dt.timedelta:
    """The longest history any plan's gate reads now: by the configured rules and by the
    rules the service last recorded for each plan (a `gate` run elsewhere is held to those),
    over every plan's gating checks at their schedules' intervals after `now`.

    Raises StoreError or StoreUnavailable.
    """
    intervals = {c.name: c.settings.typical_interval(now) for c in all_checks(settings)}
    rules = [settings.gate]
    names = set(settings.gate.checks)
    for name, spec in PLANS.items():
        names.update(spec.gating_checks)
        recorded = GateRules.from_json(
            (store.service_state(service_key(name)) or {}).get("settings")
        )
        if recorded is not None:
            rules.append(settings.gate.model_copy(update=recorded.settings_update()))
            names.update(recorded.checks)
    gaps = [intervals[n] for n in names if n in intervals]
    return max(gate_history_floor(gate, gaps) for gate in rules)


def prune_history(
    settings: Settings, store: StateStore, now: dt.datetime, progress: Progress | None = None
) -> PruneResult:
    """Delete the state store's history older than retention.history, or than the gate's
    floor where that is longer (one warning line then). Raises StoreError/StoreUnavailable."""
    evidence = evidence_floor(settings, store, now)
    history = settings.retention.history
    if evidence > history:
        log.warning(
            "keeping %s of history, not retention.history %s: the gate's recorded rules read "
            "that far back", format_duration(evidence), format_duration(history),
        )  # fmt: skip
    keep = max(history, evidence)
    return store.prune(keep, evidence, settings.retention.batch_size, progress)
