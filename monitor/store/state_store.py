"""The state store: the one door to dq-monitor's own schema (runs, stats, check memory, alerts)."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from alerts import AlertBook, Clock
from checks import (
    Check,
    CheckResult,
    Evaluation,
    Memory,
    Mode,
    Status,
)
from config import DqError
from monitor.db import ConnectionSource

from . import memory as store_memory
from . import recent, runs, stats
from . import schema as store_schema
from .alert_state import AlertRows, FiringAlertRows
from .outbox import OutboxRows
from .retention import Progress, Pruner, PruneResult
from .rows import StoreStats, TrendBucket
from .silences import SilenceRows
from .tables import StateTables


class StateStore:
    """dq-monitor's own tables, in their own schema; the single place results are kept.

    `outbox` (the alert outbox, for alerts.OutboxSender), `firing_alerts` (what
    alerts.Resender re-sends) and `silences` are its roles; everything else is a method here.
    """

    def __init__(
        self, source: ConnectionSource, schema: str, sample_limit: int, clock: Clock
    ) -> None:
        self.source = source
        self.clock = clock
        self.schema = schema
        self.sample_limit = sample_limit
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._t = StateTables(source, schema)
        self.outbox = OutboxRows(self._t)
        self.silences = SilenceRows(self._t)
        self.firing_alerts = FiringAlertRows(self._t)

    @property
    def tables(self) -> StateTables:
        """The state schema's tables and sessions, as the role modules take them."""
        return self._t

    @contextmanager
    def session(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for `action`; psycopg errors leave it as store errors (see database)."""
        with self._t.session(action) as conn:
            yield conn

    def upgrade(self) -> int:
        """Create or upgrade the state schema. Raises StoreError or StoreUnavailable."""
        with self.session(f"upgrading schema {self.schema}") as conn:
            return store_schema.upgrade(conn, self.schema)

    def window_start(self, check: Check) -> dt.datetime | None:
        """The watermark of the check's last successful run, if its findings can be carried on.

        None means a full sweep is needed: the check never succeeded, or its settings changed.
        """
        with self.session("reading the last watermark") as conn:
            return runs.window_start(conn, self._t, check)

    def last_full_sweep(self, names: Sequence[str]) -> dt.datetime | None:
        """When every named check last completed a full sweep (the oldest of them), if ever."""
        with self.session("reading the last full sweep") as conn:
            return runs.last_full_sweep(conn, self._t, names)

    def known_runs(self, names: Sequence[str]) -> frozenset[str] | None:
        """Runs with findings of the named checks now, or None when none of them ever ran.

        A full sweep judges these exactly and proves the rest clean with a cheap whole-table
        signature; None tells it to screen every run (nothing is known yet).
        """
        with self.session("reading the runs with findings") as conn:
            return runs.known_runs(conn, self._t, names)

    def memory(self, check: Check) -> Memory | None:
        """What a check that keeps memory remembers (None: nothing, for its settings)."""
        with self.session(f'reading the memory of "{check.name}"') as conn:
            return store_memory.load(
                conn, self.schema, check.name, check.fingerprint(),
                lazy_via=(lambda: self.session(f'looking up the memory of "{check.name}"'))
                if check.lazy_memory else None,
            )  # fmt: skip

    def record(
        self,
        check: Check,
        outcome: Evaluation | DqError,
        *,
        started_at: dt.datetime,
        finished_at: dt.datetime,
        duration: float,
        requested_mode: Mode,
        trigger: str = "manual",
        alerts: AlertBook | None = None,
    ) -> CheckResult:
        """Record one check run and return the check's result for the whole database.

        An evaluation replaces the findings of the runs it judged and keeps the rest; an
        error is recorded as such and leaves the findings alone. `alerts` advances the
        check's alerts in the same transaction, so the alert state and the messages it
        queues commit with the run or not at all. Raises StoreError or StoreUnavailable.
        """
        with self.session(f'recording check "{check.name}"') as conn, conn.transaction():
            runs.lock_check(conn, self._t, check.name)
            if isinstance(outcome, DqError):
                kind = outcome.kind
                run_id = runs.insert_run(
                    conn, self._t, check, status="error", mode=requested_mode,
                    started_at=started_at, finished_at=finished_at, duration=duration,
                    trigger=trigger, host=self.replica, error=str(outcome), error_kind=kind,
                )  # fmt: skip
                stats.bump_check_stats(
                    conn, self._t, check, "error", mode=requested_mode, violations=None,
                    at=finished_at, duration=duration,
                )  # fmt: skip
                return CheckResult(
                    check=check.name, status=Status.ERROR, severity=check.severity,
                    violations=0, samples=(), duration_seconds=duration, mode=requested_mode,
                    started_at=started_at, finished_at=finished_at, error=str(outcome),
                    description=check.description, run_id=run_id, error_kind=kind,
                )  # fmt: skip
            runs.replace_findings(conn, self._t, check.name, outcome)
            if outcome.memory is not None:
                store_memory.save(
                    conn, self.schema, check.name, check.fingerprint(), outcome.memory,
                    at=outcome.snapshot_at,
                )
            violations, samples = runs.totals(
                conn, self._t, check, outcome.snapshot_at, self.sample_limit
            )
            status = Status.VIOLATION if violations else Status.OK
            run_id = runs.insert_run(
                conn, self._t, check, status=status.value, mode=outcome.mode,
                started_at=started_at, finished_at=finished_at, duration=duration,
                trigger=trigger, host=self.replica, violations=violations, samples=samples,
                evaluation=outcome,
            )  # fmt: skip
            stats.bump_check_stats(
                conn, self._t, check, status.value, mode=outcome.mode, violations=violations,
                at=finished_at, duration=duration,
            )  # fmt: skip
            result = CheckResult(
                check=check.name, status=status, severity=check.severity, violations=violations,
                samples=samples, duration_seconds=duration, mode=outcome.mode,
                started_at=started_at, finished_at=finished_at, description=check.description,
                note=outcome.note, run_id=run_id,
            )  # fmt: skip
            if alerts is not None:
                alerts.apply(AlertRows(conn, self._t), check, result)
        return result

    def record_skip(self, check: Check, status: str, scheduled_at: dt.datetime) -> None:
        """Record that the scheduler missed a run, or skipped it because one still ran."""
        if status not in runs.SKIPPED:
            raise ValueError(f"not a skip status: {status}")
        now = self.clock.now()
        with (
            self.session(f'recording a {status} run of "{check.name}"') as conn,
            conn.transaction(),
        ):
            runs.lock_check(conn, self._t, check.name)
            runs.insert_run(
                conn, self._t, check, status=status, mode=Mode.INCREMENTAL,
                started_at=scheduled_at, finished_at=now, duration=None, trigger="scheduled",
                host=self.replica,
            )  # fmt: skip
            stats.bump_check_stats(
                conn, self._t, check, status, mode=None, violations=None, at=now, duration=None
            )

    def set_service_state(self, key: str, value: dict[str, Any]) -> None:
        """Publish a fact every replica serves (e.g. whether the monitored database is up)."""
        with self.session(f"saving {key}") as conn:
            stats.write_service_state(conn, self._t, key, value)

    def service_state(self, key: str) -> dict[str, Any] | None:
        """A fact the service published (see set_service_state), or None if it never did."""
        with self.session(f"reading {key}") as conn:
            return stats.read_service_state(conn, self._t, key)

    def stats(self) -> StoreStats:
        """Check stats, alert delivery stats, the service's facts and each check's latest
        run, in one snapshot."""
        with self.session("reading check stats") as conn:
            return stats.read_stats(conn, self._t)

    def trends(self) -> tuple[dt.datetime, dict[str, tuple[TrendBucket, ...]]]:
        """The state database's now() and each check's runs of the TREND_WINDOW before it,
        by bucket (see recent.read_trends)."""
        with self.session("reading the recent runs") as conn:
            return recent.read_trends(conn, self._t)

    def prune(
        self, keep: dt.timedelta, evidence: dt.timedelta, batch_size: int,
        progress: Progress | None = None,
    ) -> PruneResult:  # fmt: skip
        """Delete history older than `keep` (by the database's clock) in batches of at most
        `batch_size` rows, each its own transaction; keep the runs within `evidence` before
        each applied migration. One prune at a time per schema: another one returns skipped.
        Raises StoreError or StoreUnavailable.
        """
        with self.session("pruning the state store") as conn:
            pruner = Pruner(conn, self._t, batch_size, progress)
            if not pruner.lock():
                return PruneResult(None, None, skipped=True)
            try:
                result = pruner.run(keep, evidence, self.clock.monotonic)
                pruner.publish(result)
            finally:
                pruner.unlock()
        return result
