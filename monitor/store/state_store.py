"""The state store: every check run, carried-forward findings, per-check stats, check memory."""

from __future__ import annotations

import bisect
import datetime as dt
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json, Jsonb

from alerts import Clock
from checks import (
    Check,
    CheckResult,
    Evaluation,
    Memory,
    Mode,
    Sample,
    Status,
)
from config import (
    ConfigError,
    DatabaseUnavailable,
    DqError,
    QueryTimeout,
    StoreUnavailable,
)
from monitor.db.connections import ConnectionSource
from monitor.store import memory as store_memory
from monitor.store import schema as store_schema

# Upper bounds of dq_check_duration_seconds' buckets; the store keeps one count per bucket.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0)  # fmt: skip
SKIPPED = ("missed", "overlap")


def add_to_buckets(stored: list[int] | None, value: float | None) -> list[int]:
    """Per-bucket counts (as stored, one per DURATION_BUCKETS bound and +Inf) plus `value`."""
    buckets = list(stored or [])
    buckets += [0] * (len(DURATION_BUCKETS) + 1 - len(buckets))
    if value is not None:
        buckets[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
    return buckets


class StateStore:
    """dq-monitor's own tables, in their own schema; the single place results are kept."""

    def __init__(
        self, source: ConnectionSource, schema: str, sample_limit: int, clock: Clock
    ) -> None:
        self.source = source
        self.clock = clock
        self.schema = schema
        self.sample_limit = sample_limit
        self.replica = f"{socket.gethostname()}:{os.getpid()}"

    def _t(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    @contextmanager
    def session(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for `action`; psycopg errors leave it as store errors (see database)."""
        with self.source.connection(action) as conn:
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
            row = conn.execute(
                sql.SQL(
                    "SELECT watermark, fingerprint FROM {} WHERE check_name = %s"
                    " AND status IN ('ok', 'violation') ORDER BY id DESC LIMIT 1"
                ).format(self._t("check_runs")),
                (check.name,),
            ).fetchone()
        if row is None or row[1] != check.fingerprint() or row[0] is None:
            return None
        watermark: dt.datetime = row[0]
        return watermark

    def last_full_sweep(self, names: Sequence[str]) -> dt.datetime | None:
        """When every named check last completed a full sweep (the oldest of them), if ever."""
        with self.session("reading the last full sweep") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT check_name, max(finished_at) FROM {} WHERE check_name = ANY(%s)"
                    " AND mode = 'full' AND status IN ('ok', 'violation') GROUP BY check_name"
                ).format(self._t("check_runs")),
                (list(names),),
            ).fetchall()
        if len(rows) < len(set(names)):
            return None
        oldest: dt.datetime = min(r[1] for r in rows)
        return oldest

    def known_runs(self, names: Sequence[str]) -> frozenset[str] | None:
        """Runs with findings of the named checks now, or None when none of them ever ran.

        A full sweep judges these exactly and proves the rest clean with a cheap whole-table
        signature; None tells it to screen every run (nothing is known yet).
        """
        with self.session("reading the runs with findings") as conn:
            ran = conn.execute(
                sql.SQL(
                    "SELECT EXISTS (SELECT FROM {} WHERE check_name = ANY(%s)"
                    " AND status IN ('ok', 'violation'))"
                ).format(self._t("check_runs")),
                (list(names),),
            ).fetchone()
            if not ran or not ran[0]:
                return None
            rows = conn.execute(
                sql.SQL(
                    "SELECT DISTINCT run_key FROM {} WHERE check_name = ANY(%s) AND run_key <> ''"
                ).format(self._t("findings")),
                (list(names),),
            ).fetchall()
        return frozenset(r[0] for r in rows)

    def memory(self, check: Check) -> Memory | None:
        """What a check that keeps memory remembers (None: nothing, for its settings)."""
        with self.session(f'reading the memory of "{check.name}"') as conn:
            return store_memory.load(conn, self.schema, check.name, check.fingerprint())

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
        after: Callable[[psycopg.Connection[Any], CheckResult], object] | None = None,
    ) -> CheckResult:
        """Record one check run and return the check's result for the whole database.

        An evaluation replaces the findings of the runs it judged and keeps the rest; an
        error is recorded as such and leaves the findings alone. `after` runs in the same
        transaction (the alert outbox is written there). Raises StoreError or StoreUnavailable.
        """
        with self.session(f'recording check "{check.name}"') as conn, conn.transaction():
            self._lock_check(conn, check.name)
            if isinstance(outcome, DqError):
                kind = error_kind(outcome)
                run_id = self._insert_run(
                    conn, check, status="error", mode=requested_mode, started_at=started_at,
                    finished_at=finished_at, duration=duration, trigger=trigger,
                    error=str(outcome), error_kind=kind,
                )  # fmt: skip
                self._bump_stats(
                    conn,
                    check,
                    "error",
                    mode=requested_mode,
                    violations=None,
                    at=finished_at,
                    duration=duration,
                )
                return CheckResult(
                    check=check.name, status=Status.ERROR, severity=check.severity,
                    violations=0, samples=(), duration_seconds=duration, mode=requested_mode,
                    started_at=started_at, finished_at=finished_at, error=str(outcome),
                    description=check.description, run_id=run_id, extra={"error_kind": kind},
                )  # fmt: skip
            self._replace_findings(conn, check.name, outcome)
            if outcome.memory is not None:
                store_memory.save(
                    conn, self.schema, check.name, check.fingerprint(), outcome.memory,
                    at=outcome.snapshot_at,
                )
            violations, samples = self._totals(conn, check, outcome.snapshot_at)
            status = Status.VIOLATION if violations else Status.OK
            run_id = self._insert_run(
                conn, check, status=status.value, mode=outcome.mode, started_at=started_at,
                finished_at=finished_at, duration=duration, trigger=trigger,
                violations=violations, samples=samples, evaluation=outcome,
            )  # fmt: skip
            self._bump_stats(
                conn, check, status.value, mode=outcome.mode, violations=violations,
                at=finished_at, duration=duration,
            )  # fmt: skip
            result = CheckResult(
                check=check.name, status=status, severity=check.severity, violations=violations,
                samples=samples, duration_seconds=duration, mode=outcome.mode,
                started_at=started_at, finished_at=finished_at, description=check.description,
                note=outcome.note, run_id=run_id,
            )  # fmt: skip
            if after is not None:
                after(conn, result)
        return result

    def record_skip(self, check: Check, status: str, scheduled_at: dt.datetime) -> None:
        """Record that the scheduler missed a run, or skipped it because one still ran."""
        if status not in SKIPPED:
            raise ValueError(f"not a skip status: {status}")
        now = self.clock.now()
        with (
            self.session(f'recording a {status} run of "{check.name}"') as conn,
            conn.transaction(),
        ):
            self._lock_check(conn, check.name)
            self._insert_run(
                conn, check, status=status, mode=Mode.INCREMENTAL, started_at=scheduled_at,
                finished_at=now, duration=None, trigger="scheduled",
            )  # fmt: skip
            self._bump_stats(conn, check, status, mode=None, violations=None, at=now, duration=None)

    def _lock_check(self, conn: psycopg.Connection[Any], name: str) -> None:
        # Two recorders of one check (replicas in a hand-over, a cron `check` beside the
        # service) take turns, so the findings they replace never interleave.
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"dq-monitor:{self.schema}:{name}",),
        )

    def _insert_run(
        self,
        conn: psycopg.Connection[Any],
        check: Check,
        *,
        status: str,
        mode: Mode,
        started_at: dt.datetime,
        finished_at: dt.datetime,
        duration: float | None,
        trigger: str,
        violations: int | None = None,
        samples: Sequence[Sample] = (),
        evaluation: Evaluation | None = None,
        error: str | None = None,
        error_kind: str | None = None,
    ) -> int:
        row = conn.execute(
            sql.SQL(
                "INSERT INTO {} (check_name, started_at, finished_at, mode, status, severity,"
                " violations, samples, error, error_kind, note, snapshot_at, watermark,"
                " judged_runs, duration_seconds, fingerprint, trigger, host, interval_seconds)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s)"
                " RETURNING id"
            ).format(self._t("check_runs")),
            (
                check.name, started_at, finished_at, mode.value, status, check.severity.value,
                violations, Json(list(samples)), error, error_kind,
                evaluation.note if evaluation else None,
                evaluation.snapshot_at if evaluation else None,
                evaluation.watermark if evaluation else None,
                evaluation.judged_count if evaluation else None,
                duration, check.fingerprint(), trigger, self.replica,
                # The schedule in force for this run: the gate judges gaps by it, not by the
                # setting of whoever evaluates the gate later.
                check.settings.typical_interval(finished_at).total_seconds(),
            ),
        ).fetchone()  # fmt: skip
        assert row is not None
        return int(row[0])

    def _bump_stats(
        self,
        conn: psycopg.Connection[Any],
        check: Check,
        status: str,
        *,
        mode: Mode | None,
        violations: int | None,
        at: dt.datetime,
        duration: float | None,
    ) -> None:
        stats = self._t("check_stats")
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (check_name, severity) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            ).format(stats),
            (check.name, check.severity.value),
        )
        row = conn.execute(
            sql.SQL("SELECT duration_buckets FROM {} WHERE check_name = %s FOR UPDATE").format(
                stats
            ),
            (check.name,),
        ).fetchone()
        buckets = add_to_buckets(row[0] if row else None, duration)
        ran = status not in SKIPPED
        succeeded = status in ("ok", "violation")
        conn.execute(
            sql.SQL(
                "UPDATE {} SET severity = %(severity)s,"
                " last_status = CASE WHEN %(ran)s THEN %(status)s ELSE last_status END,"
                " last_mode = coalesce(%(mode)s, last_mode),"
                " last_violations = CASE WHEN %(ok)s THEN %(violations)s ELSE last_violations END,"
                " last_run_at = CASE WHEN %(ran)s THEN %(at)s ELSE last_run_at END,"
                " last_success_at = CASE WHEN %(ok)s THEN %(at)s ELSE last_success_at END,"
                " last_duration = coalesce(%(duration)s, last_duration),"
                " runs_total = runs_total + (%(ran)s)::int,"
                " errors_total = errors_total + (%(status)s = 'error')::int,"
                " missed_total = missed_total + (%(status)s = 'missed')::int,"
                " overlaps_total = overlaps_total + (%(status)s = 'overlap')::int,"
                " duration_buckets = %(buckets)s,"
                " duration_sum = duration_sum + coalesce(%(duration)s, 0)"
                " WHERE check_name = %(name)s"
            ).format(stats),
            {
                "severity": check.severity.value, "status": status,
                "mode": mode.value if mode else None, "ok": succeeded,
                "violations": violations or 0, "ran": ran, "at": at, "duration": duration,
                "buckets": buckets, "name": check.name,
            },
        )  # fmt: skip

    def _replace_findings(
        self, conn: psycopg.Connection[Any], name: str, evaluation: Evaluation
    ) -> None:
        findings = self._t("findings")
        if evaluation.judged is None:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND NOT (run_key = ANY(%s))").format(
                    findings
                ),
                (name, list(evaluation.unsettled)),
            )
        elif evaluation.judged:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND run_key = ANY(%s)").format(
                    findings
                ),
                (name, list(evaluation.judged)),
            )
        if evaluation.expire_before is not None:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND judged_at < %s").format(findings),
                (name, evaluation.expire_before),
            )
        if not evaluation.findings:
            return
        with conn.cursor().copy(
            sql.SQL(
                "COPY {} (check_name, run_key, violations, samples, judged_at) FROM STDIN"
            ).format(findings)
        ) as copy:
            for f in evaluation.findings:
                copy.write_row(
                    (name, f.run_key, f.violations, Json(list(f.samples)), evaluation.snapshot_at)
                )

    def _totals(
        self, conn: psycopg.Connection[Any], check: Check, now: dt.datetime
    ) -> tuple[int, tuple[Sample, ...]]:
        findings = self._t("findings")
        row = conn.execute(
            sql.SQL("SELECT coalesce(sum(violations), 0) FROM {} WHERE check_name = %s").format(
                findings
            ),
            (check.name,),
        ).fetchone()
        total = int(row[0]) if row else 0
        # Deterministic order (shorter keys first, so run 9 precedes run 10) makes an
        # incremental run and a full sweep pick the same samples.
        rows = conn.execute(
            sql.SQL(
                "SELECT samples FROM {} WHERE check_name = %s"
                " ORDER BY length(run_key), run_key LIMIT %s"
            ).format(findings),
            (check.name, self.sample_limit),
        ).fetchall()
        samples: list[Sample] = []
        for (run_samples,) in rows:
            samples.extend(check.refresh_sample(s, now) for s in run_samples)
        return total, tuple(samples[: self.sample_limit])

    def set_service_state(self, key: str, value: dict[str, Any]) -> None:
        """Publish a fact every replica serves (e.g. whether the monitored database is up)."""
        with self.session(f"saving {key}") as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (key, value, updated_at) VALUES (%s, %s, now())"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()"
                ).format(self._t("service_state")),
                (key, Jsonb(value)),
            )

    def service_state(self, key: str) -> dict[str, Any] | None:
        """A fact the service published (see set_service_state), or None if it never did."""
        with self.session(f"reading {key}") as conn:
            row = conn.execute(
                sql.SQL("SELECT value FROM {} WHERE key = %s").format(self._t("service_state")),
                (key,),
            ).fetchone()
        return dict(row[0]) if row and isinstance(row[0], dict) else None

    def stats(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Check stats rows and the service state (with alert delivery stats under "delivery"
        and the outbox's pending count under "outbox_pending"), in one snapshot for metrics."""
        with self.session("reading check stats") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT * FROM {}").format(self._t("check_stats")))
                cols = [d.name for d in cur.description or ()]
                rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            query = sql.SQL("SELECT key, value FROM {}").format(self._t("service_state"))
            state = dict(conn.execute(query).fetchall())
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT * FROM {}").format(self._t("delivery_stats")))
                cols = [d.name for d in cur.description or ()]
                state["delivery"] = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
            pending = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE status = 'pending'").format(
                    self._t("alert_outbox")
                )
            ).fetchone()
            state["outbox_pending"] = int(pending[0]) if pending else 0
        return rows, state


def error_kind(error: DqError) -> str:
    """A short, stable name for the kind of error (exit codes and metrics use it)."""
    if isinstance(error, DatabaseUnavailable | StoreUnavailable):
        return "unavailable"
    if isinstance(error, ConfigError):
        return "config"
    if isinstance(error, QueryTimeout):
        return "timeout"
    return "failed"
