"""Prometheus metrics served from the state store's latest snapshot, never from the monitored DB."""

from __future__ import annotations

import datetime as dt
import logging
import platform
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from checks import Check, all_checks
from config import DEFAULT_DATABASE, Settings, format_duration
from monitor import __version__
from monitor.gate import PLANS, service_key
from monitor.service.stats_cache import StatsCache, StatsSnapshot
from monitor.store import DURATION_BUCKETS, PRUNED, RETENTION_KEY

log = logging.getLogger(__name__)

STATUS_VALUE = {"ok": 0, "violation": 1, "error": 2}
__all__ = ["STATUS_VALUE", "DatabaseView", "DqCollector", "StatsCache", "StatsSnapshot",
           "SweepProgress", "build_registry", "exposition_key", "one_database"]  # fmt: skip


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


@dataclass(frozen=True)
class DatabaseView:
    """What /metrics shows of one monitored database: the settings its checks run with (its
    App's: which checks are enabled, their intervals, the routes, the gate's period), the
    cache of its state schema, whether this replica leads it, and its sweep progress."""

    settings: Settings
    cache: StatsCache
    is_leader: Callable[[], bool]
    progress: SweepProgress = field(default_factory=SweepProgress)

    @cached_property
    def checks(self) -> list[Check]:
        """The database's enabled checks, in configuration order."""
        return [c for c in all_checks(self.settings) if c.settings.enabled]

    def key(self) -> Hashable:
        """Changes whenever this database's part of the exposition may have changed."""
        cache = self.cache
        return cache.snapshot.loaded_at, cache.store_up, self.is_leader(), self.progress.version


#: Database name (the `database` label value) -> its view, in configuration order.
DatabaseViews = Mapping[str, DatabaseView]


def one_database(
    settings: Settings,
    cache: StatsCache,
    is_leader: Callable[[], bool],
    progress: SweepProgress | None = None,
) -> dict[str, DatabaseView]:
    """The views of a single-database setup: its one database is named `default`."""
    return {DEFAULT_DATABASE: DatabaseView(settings, cache, is_leader, progress or SweepProgress())}


def exposition_key(views: DatabaseViews) -> Hashable:
    """The cached exposition's key: any database's reload, leadership or progress re-renders."""
    return tuple(view.key() for view in views.values())


def _ts(value: dt.datetime | None) -> float:
    return value.timestamp() if value else 0.0


@dataclass(frozen=True)
class _Shown:
    """One database as the collector renders it, worked out once from its settings."""

    name: str
    view: DatabaseView
    checks: list[Check]
    routes: list[str]
    gate_required: float


class DqCollector(Collector):
    """Builds fresh metric families per scrape from each database's cached snapshot.

    `settings` are the replica's (the HELP texts); every per-database, per-check, per-plan and
    per-route series carries `database`; dq_state_store_up, dq_metrics_snapshot_timestamp_seconds
    and dq_build_info describe this replica and do not.
    """

    def __init__(self, settings: Settings, views: DatabaseViews) -> None:
        self.views = views
        self.shown = [
            _Shown(
                name, view, view.checks, [r.name for r in view.settings.alerts.routes],
                view.settings.gate.required_clean_period.total_seconds(),
            )
            for name, view in views.items()
        ]  # fmt: skip
        self.gate_every = format_duration(settings.gate.evaluate_interval)
        self.prune_every = format_duration(settings.retention.interval)
        full = format_duration(settings.schedule.full_sweep_interval)
        self.cadence = (
            "Cached from the scheduled check runs (each check's interval is "
            f"dq_check_interval_seconds; a full sweep every {full}); a scrape never queries "
            "the monitored database."
        )

    def collect(self) -> Iterator[Metric]:
        c = self.cadence
        label = ["database", "check"]
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
                labels=["database", "check", "severity"]),
            "progress": GaugeMetricFamily(
                "dq_check_progress_ratio",
                "Share of the check's current or latest evaluation done on this replica, by "
                "ranges of runs for a full sweep split into ranges (sweep_chunk_rows); 1 once it "
                "finished, 0 before this replica ran it.", labels=label),
        }  # fmt: skip
        duration = HistogramMetricFamily(
            "dq_check_duration_seconds", f"How long check runs took. {c}", labels=label
        )
        for shown in self.shown:
            stats, progress = shown.view.cache.snapshot.stats, shown.view.progress
            for check in shown.checks:
                row = stats.check(check.name)
                name = [shown.name, check.name]
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
                fam["info"].add_metric([*name, check.severity.value], 1)
                fam["progress"].add_metric(name, progress.ratio(check.name))
                duration.add_metric(name, _cumulative(row.duration_buckets), row.duration_sum)
        yield from fam.values()
        yield duration
        yield from self._database_metrics()
        yield from self._alert_metrics()
        yield from self._gate_metrics()
        yield from self._retention_metrics()
        build = GaugeMetricFamily(
            "dq_build_info", "dq-monitor's version (always 1).", labels=["version", "python"]
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build

    def _database_metrics(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "dq_database_up",
            "1 when the leader's latest check reached the monitored database.",
            labels=["database"],
        )
        leader = GaugeMetricFamily(
            "dq_leader", "1 when this replica holds the database's leader lock and runs its "
            "checks.", labels=["database"],
        )  # fmt: skip
        for shown in self.shown:
            database = shown.view.cache.snapshot.stats.service.get("database") or {}
            up.add_metric([shown.name], 1 if database.get("up") else 0)
            leader.add_metric([shown.name], 1 if shown.view.is_leader() else 0)
        yield up
        yield leader
        # One state store serves every database (one pool), so these describe the replica:
        # down when any database's latest read failed, and the oldest of the loads.
        caches = [shown.view.cache for shown in self.shown]
        yield _gauge(
            "dq_state_store_up",
            "1 when this replica's latest read of the state store succeeded (for every database).",
            1 if caches and all(c.store_up for c in caches) else 0,
        )
        yield _gauge("dq_metrics_snapshot_timestamp_seconds",
                     "When this replica last loaded results from the state store (the oldest "
                     "of its databases' loads).",
                     min((c.snapshot.loaded_at for c in caches), default=0.0))  # fmt: skip

    def _gate_metrics(self) -> Iterator[Metric]:
        note = f"The leader evaluates each plan's gate every {self.gate_every}."
        label = ["database", "plan"]
        fam = {
            "open": GaugeMetricFamily(
                "dq_gate_open", f"1 when the migration plan's gate is open. {note}",
                labels=label),
            "clean": GaugeMetricFamily(
                "dq_gate_clean_since_timestamp_seconds",
                "Since when every gating check of the plan has been clean (0 while blocked or "
                f"before the first evaluation); time() minus it is the clean period. {note}",
                labels=label),
            "required": GaugeMetricFamily(
                "dq_gate_required_seconds", "The clean period the plan's gate requires.",
                labels=label),
        }  # fmt: skip
        for shown in self.shown:
            service = shown.view.cache.snapshot.stats.service
            for plan in PLANS:
                gate = service.get(service_key(plan)) or {}
                since = gate.get("clean_since")
                # A timestamp, not "time since": the exposition then depends on the snapshot
                # alone, so the cached body stays exact between reloads.
                clean_since = 0.0
                if since and gate.get("decision") != "blocked":
                    clean_since = dt.datetime.fromisoformat(since).timestamp()
                labels = [shown.name, plan]
                fam["open"].add_metric(labels, 1 if gate.get("decision") == "open" else 0)
                fam["clean"].add_metric(labels, clean_since)
                # The period the leader applied (never below the default unless accepted).
                fam["required"].add_metric(
                    labels, float(gate.get("required_seconds", shown.gate_required))
                )
        yield from fam.values()

    def _retention_metrics(self) -> Iterator[Metric]:
        deleted = CounterMetricFamily(
            "dq_state_pruned_rows",
            "State-store rows the leader's retention deleted, by table, all replicas (history "
            f"past retention.history, every {self.prune_every}).",
            labels=["database", "table"],
        )
        last = GaugeMetricFamily(
            "dq_state_last_prune_timestamp_seconds",
            "When the database's state schema was last pruned (0: never).", labels=["database"],
        )  # fmt: skip
        for shown in self.shown:
            pruned = shown.view.cache.snapshot.stats.service.get(RETENTION_KEY) or {}
            totals = pruned.get("totals") or {}
            for table in PRUNED:
                deleted.add_metric([shown.name, table], float(totals.get(table, 0)))
            at = pruned.get("at")
            last.add_metric([shown.name], dt.datetime.fromisoformat(at).timestamp() if at else 0)
        yield deleted
        yield last

    def _alert_metrics(self) -> Iterator[Metric]:
        # One counter per outcome, not an outcome label (Prometheus's instrumentation guide),
        # each counting exactly what the store counts: a message is delivered or given up once,
        # and every failed attempt before that is one retry. Each database's outbox lives in
        # its own state schema, so the counters are per database and route.
        shared = "By database and route, all replicas (from the shared state store)."
        label = ["database", "route"]
        fam = {
            "delivered": CounterMetricFamily(
                "dq_alert_messages_delivered",
                f"Alert messages delivered (the attempt that succeeded). {shared}",
                labels=label),
            "retries": CounterMetricFamily(
                "dq_alert_delivery_retries",
                "Failed delivery attempts after which the message was queued again; a failure "
                "that ends the message counts in dq_alert_messages_dead_total instead. "
                f"{shared}", labels=label),
            "dead": CounterMetricFamily(
                "dq_alert_messages_dead",
                "Alert messages given up undelivered, never retried (a permanent error, or "
                f"alerts.max_delivery_age passed). {shared}", labels=label),
        }  # fmt: skip
        latency = HistogramMetricFamily(
            "dq_alert_delivery_seconds",
            "Time from an alert message being queued to its delivery.",
            labels=label,
        )
        pending = GaugeMetricFamily(
            "dq_alert_outbox_pending", "Alert messages waiting to be delivered.",
            labels=["database"],
        )  # fmt: skip
        for shown in self.shown:
            delivery = shown.view.cache.snapshot.stats.delivery
            for route in shown.routes:
                row, labels = delivery.route(route), [shown.name, route]
                fam["delivered"].add_metric(labels, row.sent_total)
                fam["retries"].add_metric(labels, row.failed_total)
                fam["dead"].add_metric(labels, row.dead_total)
                latency.add_metric(labels, _cumulative(row.duration_buckets), row.duration_sum)
            pending.add_metric([shown.name], delivery.outbox_pending)
        yield from fam.values()
        yield latency
        yield pending


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


def build_registry(settings: Settings, views: DatabaseViews) -> CollectorRegistry:
    """A registry of our own (never the global one) holding dq-monitor's collector for the
    monitored databases in `views` (one_database() makes the single-database mapping)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DqCollector(settings, views))
    return registry
