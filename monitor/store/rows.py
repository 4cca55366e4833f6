"""Typed rows of the state schema, as the store hands them to the rest of the application."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from config import format_duration

# Upper bounds of dq_check_duration_seconds' buckets; the store keeps one count per bucket.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0)  # fmt: skip


def add_to_buckets(stored: list[int] | None, value: float | None) -> list[int]:
    """Per-bucket counts (as stored, one per DURATION_BUCKETS bound and +Inf) plus `value`."""
    buckets = list(stored or [])
    buckets += [0] * (len(DURATION_BUCKETS) + 1 - len(buckets))
    if value is not None:
        buckets[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
    return buckets


@dataclass(frozen=True)
class CheckStats:
    """One check's counters and latest run (a row of check_stats).

    A check with no row yet reads as CheckStats(name): never run, nothing counted.
    """

    check_name: str
    severity: str | None = None
    last_status: str | None = None  # ok, violation or error; skipped runs leave it
    last_mode: str | None = None
    last_violations: int = 0  # of the latest successful run
    last_run_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_duration: float | None = None
    runs_total: int = 0
    errors_total: int = 0
    missed_total: int = 0
    overlaps_total: int = 0
    duration_buckets: tuple[int, ...] = ()  # one count per DURATION_BUCKETS bound and +Inf
    duration_sum: float = 0.0


@dataclass(frozen=True)
class RouteDelivery:
    """One route's delivery counters (a row of delivery_stats)."""

    route: str
    sent_total: int = 0
    failed_total: int = 0  # attempts that will be retried
    dead_total: int = 0
    duration_buckets: tuple[int, ...] = ()  # queued-to-delivered, as CheckStats' buckets
    duration_sum: float = 0.0


@dataclass(frozen=True)
class DeliveryStats:
    """Alert delivery across routes, and what the outbox holds now."""

    routes: dict[str, RouteDelivery] = field(default_factory=dict)
    outbox_pending: int = 0
    outbox_dead: int = 0  # given up and kept in the outbox, as `counts()` counts them

    def route(self, name: str) -> RouteDelivery:
        return self.routes.get(name) or RouteDelivery(name)


@dataclass(frozen=True)
class StoreStats:
    """Everything the metrics show, read from the state store in one snapshot."""

    checks: dict[str, CheckStats] = field(default_factory=dict)
    delivery: DeliveryStats = field(default_factory=DeliveryStats)
    # Facts the leader published for every replica (see StateStore.set_service_state):
    # "database" ({"up", "at"}) and "gate" (the gate's latest decision).
    service: dict[str, dict[str, Any]] = field(default_factory=dict)
    # For the status page: each check's latest run that ran (ok, violation or error).
    latest: dict[str, LatestRun] = field(default_factory=dict)

    def check(self, name: str) -> CheckStats:
        return self.checks.get(name) or CheckStats(name)


@dataclass(frozen=True)
class LatestRun:
    """A check's latest run that ran (ok, violation or error; a row of check_runs)."""

    check_name: str
    status: str
    severity: str
    mode: str
    started_at: dt.datetime
    finished_at: dt.datetime
    violations: int | None = None
    error: str | None = None
    error_kind: str | None = None
    note: str | None = None
    samples: tuple[Any, ...] = ()  # as recorded: at most the sample_limit of its run


@dataclass(frozen=True)
class TrendBucket:
    """A check's runs started in one of the TREND_BUCKETS slices of the TREND_WINDOW that ends
    at the state database's now(): `index` 0 is the newest slice."""

    index: int
    violations: int | None  # the most any of its successful runs found; None: none succeeded
    errors: int = 0
    runs: int = 0


@dataclass(frozen=True)
class Silence:
    """A silence (a row of silences): the check still runs and records but sends nothing."""

    id: int
    check: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    created_by: str
    reason: str
    removed_at: dt.datetime | None
    removed_by: str | None

    def describe(self, now: dt.datetime) -> str:
        if self.removed_at is not None:
            state = f"removed by {self.removed_by} at {self.removed_at:%Y-%m-%d %H:%M} UTC"
        elif self.ends_at <= now:
            state = "expired"
        else:
            left = dt.timedelta(seconds=round((self.ends_at - now).total_seconds()))
            state = f"active, {format_duration(left)} left"
        return (
            f"#{self.id} {self.check}: {self.starts_at:%Y-%m-%d %H:%M} to "
            f"{self.ends_at:%Y-%m-%d %H:%M} UTC by {self.created_by} ({state}): {self.reason}"
        )
