"""Prometheus metrics served from the state store's latest snapshot, never from the monitored DB."""

from __future__ import annotations

import datetime as dt
import logging
import platform
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from alerts import Clock
from checks import Check, all_checks
from config import DqError, Settings, format_duration
from monitor import __version__
from monitor.gate import PLANS, service_key
from monitor.store import DURATION_BUCKETS, PRUNED, RETENTION_KEY, StateStore, StoreStats

log = logging.getLogger(__name__)

STATUS_VALUE = {"ok": 0, "violation": 1, "error": 2}


@dataclass
class StatsSnapshot:
    """What a replica last read from the state store."""

    stats: StoreStats = field(default_factory=StoreStats)
    loaded_at: float = 0.0


class StatsCache:
    """Reloads the state store's per-check stats; keeps the last good copy while it is down."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.snapshot = StatsSnapshot()
        self.store_up = False

    def refresh(self) -> bool:
        """Reload; returns whether the state store answered."""
        try:
            stats = self.store.stats()
        except DqError as exc:
            if self.store_up:
                log.warning("%s; serving the last known metrics", exc)
            self.store_up = False
            return False
        self.snapshot = StatsSnapshot(stats=stats, loaded_at=self.clock.now().timestamp())
        self.store_up = True
        return True


class SweepProgress:
    """How far this replica's current (or latest) evaluation of each check got, 0..1.

    The pipeline's progress listener: a sweep split into ranges moves it range by range, any
    other evaluation from 0 to 1; it stays where a failed evaluation stopped. `version` moves
    with every change, so a cached exposition knows to render again.
    """

    def __init__(self) -> None:
        self._ratios: dict[str, float] = {}
        self._lock = threading.Lock()
        self.version = 0

    def __call__(self, checks: tuple[str, ...], name: str, done: int, total: int) -> None:
        ratio = min(1.0, done / total) if total > 0 else 1.0
        with self._lock:
            for check in checks:
                self._ratios[check] = ratio
            self.version += 1

    def ratio(self, check: str) -> float:
        with self._lock:
            return self._ratios.get(check, 0.0)


def _ts(value: dt.datetime | None) -> float:
    return value.timestamp() if value else 0.0


class DqCollector(Collector):
    """Builds fresh metric families per scrape from the cached snapshot."""

    def __init__(
        self,
        settings: Settings,
        cache: StatsCache,
        is_leader: Callable[[], bool],
        progress: SweepProgress | None = None,
    ) -> None:
        self.cache = cache
        self.progress = progress or SweepProgress()
        self.is_leader = is_leader
        self.checks: list[Check] = [c for c in all_checks(settings) if c.settings.enabled]
        self.routes = [r.name for r in settings.alerts.routes]
        self.gate_every = format_duration(settings.gate.evaluate_interval)
        self.prune_every = format_duration(settings.retention.interval)
        self.gate_required = settings.gate.required_clean_period.total_seconds()
        full = format_duration(settings.schedule.full_sweep_interval)
        self.cadence = (
            "Cached from the scheduled check runs (each check's interval is "
            f"dq_check_interval_seconds; a full sweep every {full}); a scrape never queries "
            "the monitored database."
        )

    def collect(self) -> Iterator[Metric]:
        snap, c = self.cache.snapshot, self.cadence
        label = ["check"]
        fam: dict[str, Any] = {
            "violations": GaugeMetricFamily(
                "dq_check_violations", f"Violations found by the check's latest run. {c}",
                labels=label),
            "status": GaugeMetricFamily(
                "dq_check_status", f"Latest run: 0 ok, 1 violation, 2 error. {c}", labels=label),
            "last_run": GaugeMetricFamily(
                "dq_check_last_run_timestamp_seconds", f"When the check last ran. {c}",
                labels=label),
            "last_success": GaugeMetricFamily(
                "dq_check_last_success_timestamp_seconds",
                f"When the check last ran successfully (ok or violation). {c}", labels=label),
            "runs": CounterMetricFamily(
                "dq_check_runs", f"Check runs recorded, all replicas. {c}", labels=label),
            "errors": CounterMetricFamily(
                "dq_check_errors", f"Check runs that ended in an error. {c}", labels=label),
            "missed": CounterMetricFamily(
                "dq_check_missed_runs", f"Scheduled runs missed (started too late). {c}",
                labels=label),
            "overlaps": CounterMetricFamily(
                "dq_check_overlapping_runs",
                f"Scheduled runs skipped because the previous one still ran. {c}", labels=label),
            "interval": GaugeMetricFamily(
                "dq_check_interval_seconds",
                "How often the check runs (0 when it runs on a cron schedule).", labels=label),
            "info": GaugeMetricFamily(
                "dq_check_info", "Configured checks and their severity (always 1).",
                labels=["check", "severity"]),
            "progress": GaugeMetricFamily(
                "dq_check_progress_ratio",
                "Share of the check's current or latest evaluation done on this replica, by "
                "ranges of runs for a full sweep split into ranges (sweep_chunk_rows); 1 once it "
                "finished, 0 before this replica ran it.", labels=label),
        }  # fmt: skip
        duration = HistogramMetricFamily(
            "dq_check_duration_seconds", f"How long check runs took. {c}", labels=label
        )
        for check in self.checks:
            row = snap.stats.check(check.name)
            name = [check.name]
            fam["violations"].add_metric(name, row.last_violations)
            fam["status"].add_metric(name, STATUS_VALUE.get(row.last_status or "ok", 0))
            fam["last_run"].add_metric(name, _ts(row.last_run_at))
            fam["last_success"].add_metric(name, _ts(row.last_success_at))
            fam["runs"].add_metric(name, row.runs_total)
            fam["errors"].add_metric(name, row.errors_total)
            fam["missed"].add_metric(name, row.missed_total)
            fam["overlaps"].add_metric(name, row.overlaps_total)
            interval = 0.0 if check.settings.cron else check.settings.interval.total_seconds()
            fam["interval"].add_metric(name, interval)
            fam["info"].add_metric([check.name, check.severity.value], 1)
            fam["progress"].add_metric(name, self.progress.ratio(check.name))
            duration.add_metric(name, _cumulative(row.duration_buckets), row.duration_sum)
        yield from fam.values()
        yield duration
        database = snap.stats.service.get("database") or {}
        yield _gauge("dq_database_up",
                     "1 when the leader's latest check reached the monitored database.",
                     1 if database.get("up") else 0)  # fmt: skip
        yield _gauge("dq_state_store_up",
                     "1 when this replica's latest read of the state store succeeded.",
                     1 if self.cache.store_up else 0)  # fmt: skip
        yield _gauge("dq_leader", "1 when this replica holds the leader lock and runs checks.",
                     1 if self.is_leader() else 0)  # fmt: skip
        yield _gauge("dq_metrics_snapshot_timestamp_seconds",
                     "When this replica last loaded results from the state store.",
                     snap.loaded_at)  # fmt: skip
        yield from self._alert_metrics(snap)
        yield from self._gate_metrics(snap)
        yield from self._retention_metrics(snap)
        build = GaugeMetricFamily(
            "dq_build_info", "dq-monitor's version (always 1).", labels=["version", "python"]
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build

    def _gate_metrics(self, snap: StatsSnapshot) -> Iterator[Metric]:
        note = f"The leader evaluates each plan's gate every {self.gate_every}."
        fam = {
            "open": GaugeMetricFamily(
                "dq_gate_open", f"1 when the migration plan's gate is open. {note}",
                labels=["plan"]),
            "clean": GaugeMetricFamily(
                "dq_gate_clean_since_timestamp_seconds",
                "Since when every gating check of the plan has been clean (0 while blocked or "
                f"before the first evaluation); time() minus it is the clean period. {note}",
                labels=["plan"]),
            "required": GaugeMetricFamily(
                "dq_gate_required_seconds", "The clean period the plan's gate requires.",
                labels=["plan"]),
        }  # fmt: skip
        for plan in PLANS:
            gate = snap.stats.service.get(service_key(plan)) or {}
            since = gate.get("clean_since")
            # A timestamp, not "time since": the exposition then depends on the snapshot alone,
            # so the cached body stays exact between reloads.
            clean_since = 0.0
            if since and gate.get("decision") != "blocked":
                clean_since = dt.datetime.fromisoformat(since).timestamp()
            fam["open"].add_metric([plan], 1 if gate.get("decision") == "open" else 0)
            fam["clean"].add_metric([plan], clean_since)
            # The period the leader applied (never below the default unless accepted as weaker).
            fam["required"].add_metric([plan], float(gate.get("required_seconds",
                                                              self.gate_required)))  # fmt: skip
        yield from fam.values()

    def _retention_metrics(self, snap: StatsSnapshot) -> Iterator[Metric]:
        pruned = snap.stats.service.get(RETENTION_KEY) or {}
        deleted = CounterMetricFamily(
            "dq_state_pruned_rows",
            "State-store rows the leader's retention deleted, by table, all replicas (history "
            f"past retention.history, every {self.prune_every}).",
            labels=["table"],
        )
        totals = pruned.get("totals") or {}
        for table in PRUNED:
            deleted.add_metric([table], float(totals.get(table, 0)))
        yield deleted
        at = pruned.get("at")
        yield _gauge("dq_state_last_prune_timestamp_seconds",
                     "When the state store was last pruned (0: never).",
                     dt.datetime.fromisoformat(at).timestamp() if at else 0.0)  # fmt: skip

    def _alert_metrics(self, snap: StatsSnapshot) -> Iterator[Metric]:
        # One counter per outcome, not an outcome label (Prometheus's instrumentation guide),
        # each counting exactly what the store counts: a message is delivered or given up once,
        # and every failed attempt before that is one retry.
        shared = "By route, all replicas (from the shared state store)."
        fam = {
            "delivered": CounterMetricFamily(
                "dq_alert_messages_delivered",
                f"Alert messages delivered (the attempt that succeeded). {shared}",
                labels=["route"]),
            "retries": CounterMetricFamily(
                "dq_alert_delivery_retries",
                "Failed delivery attempts after which the message was queued again; a failure "
                "that ends the message counts in dq_alert_messages_dead_total instead. "
                f"{shared}", labels=["route"]),
            "dead": CounterMetricFamily(
                "dq_alert_messages_dead",
                "Alert messages given up undelivered, never retried (a permanent error, or "
                f"alerts.max_delivery_age passed). {shared}", labels=["route"]),
        }  # fmt: skip
        latency = HistogramMetricFamily(
            "dq_alert_delivery_seconds",
            "Time from an alert message being queued to its delivery.",
            labels=["route"],
        )
        delivery = snap.stats.delivery
        for route in self.routes:
            row = delivery.route(route)
            fam["delivered"].add_metric([route], row.sent_total)
            fam["retries"].add_metric([route], row.failed_total)
            fam["dead"].add_metric([route], row.dead_total)
            latency.add_metric([route], _cumulative(row.duration_buckets), row.duration_sum)
        yield from fam.values()
        yield latency
        yield _gauge("dq_alert_outbox_pending", "Alert messages waiting to be delivered.",
                     delivery.outbox_pending)  # fmt: skip


def _cumulative(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts from the store as Prometheus's cumulative (le, count) pairs."""
    values = list(counts)
    values += [0] * (len(DURATION_BUCKETS) + 1 - len(values))
    total, buckets = 0, []
    for bound, count in zip((*DURATION_BUCKETS, float("inf")), values, strict=True):
        total += count
        buckets.append(("+Inf" if bound == float("inf") else str(bound), float(total)))
    return buckets


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def build_registry(
    settings: Settings,
    cache: StatsCache,
    is_leader: Callable[[], bool],
    progress: SweepProgress | None = None,
) -> CollectorRegistry:
    """A registry of our own (never the global one) holding dq-monitor's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DqCollector(settings, cache, is_leader, progress))
    return registry

