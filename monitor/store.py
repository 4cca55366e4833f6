"""The state store: every check run, the carried-forward findings, and the counter ledger."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from checks import (
    Check,
    CheckResult,
    CounterLedger,
    Evaluation,
    Mode,
    Sample,
    Status,
    describe_pg_error,
    is_connection_loss,
)
from config import (
    ConfigError,
    DatabaseUnavailable,
    DqError,
    QueryTimeout,
    StoreError,
    StoreUnavailable,
)

from . import store_schema


class StateStore:
    """dq-monitor's own tables, in their own schema; the single place results are kept."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, sample_limit: int) -> None:
        self.conn = conn
        self.schema = schema
        self.sample_limit = sample_limit
        self.host = socket.gethostname()
        self._s = sql.Identifier(schema)

    def _t(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            detail = describe_pg_error(exc)
            if is_connection_loss(exc):
                raise StoreUnavailable(
                    f"state store: lost the connection while {action}: {detail}; "
                    "check that the state database is up"
                ) from exc
            raise StoreError(f"state store: {action} failed: {detail}") from exc

    def upgrade(self) -> int:
        """Create or upgrade the state schema. Raises StoreError or StoreUnavailable."""
        with self._translated(f"upgrading schema {self.schema}"):
            return store_schema.upgrade(self.conn, self.schema)

    def window_start(self, check: Check) -> dt.datetime | None:
        """The watermark of the check's last successful run, if its findings can be carried on.

        None means a full sweep is needed: the check never succeeded, or its settings changed.
        """
        with self._translated("reading the last watermark"):
            row = self.conn.execute(
                sql.SQL(
                    "SELECT watermark, fingerprint FROM {} WHERE check_name = %s"
                    " AND status <> 'error' ORDER BY id DESC LIMIT 1"
                ).format(self._t("check_runs")),
                (check.name,),
            ).fetchone()
        if row is None or row[1] != check.fingerprint() or row[0] is None:
            return None
        watermark: dt.datetime = row[0]
        return watermark

    def ledger(self, check: Check) -> CounterLedger:
        """The counters seen last time; a changed fingerprint means a new baseline."""
        with self._translated("reading the counter ledger"):
            base = self.conn.execute(
                sql.SQL("SELECT fingerprint FROM {} WHERE check_name = %s").format(
                    self._t("ledger_baselines")
                ),
                (check.name,),
            ).fetchone()
            if base is None or base[0] != check.fingerprint():
                return CounterLedger(baseline_taken=False)
            rows = self.conn.execute(
                sql.SQL("SELECT run_key, completed, failed FROM {} WHERE check_name = %s").format(
                    self._t("counter_ledger")
                ),
                (check.name,),
            ).fetchall()
        return CounterLedger(
            baseline_taken=True,
            run_keys=[r[0] for r in rows],
            completed=[r[1] for r in rows],
            failed=[r[2] for r in rows],
        )

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
    ) -> CheckResult:
        """Record one check run and return the check's result for the whole database.

        An evaluation replaces the findings of the runs it judged and keeps the rest; an
        error is recorded as such and leaves the findings alone.
        Raises StoreError or StoreUnavailable.
        """
        with self._translated(f'recording check "{check.name}"'), self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"dq-monitor:{self.schema}:{check.name}",),
            )
            if isinstance(outcome, DqError):
                return self._record_error(
                    check,
                    error=outcome,
                    started_at=started_at,
                    finished_at=finished_at,
                    duration=duration,
                    mode=requested_mode,
                    trigger=trigger,
                )
            self._replace_findings(check.name, outcome)
            if outcome.ledger is not None:
                self._update_ledger(check, outcome)
            violations, samples = self._totals(check, outcome.snapshot_at)
            status = Status.VIOLATION if violations else Status.OK
            row = self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (check_name, started_at, finished_at, mode, status, severity,"
                    " violations, samples, note, snapshot_at, watermark, judged_runs,"
                    " fingerprint, trigger, host)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " RETURNING id"
                ).format(self._t("check_runs")),
                (
                    check.name, started_at, finished_at, outcome.mode.value, status.value,
                    check.severity.value, violations, Json(list(samples)), outcome.note,
                    outcome.snapshot_at, outcome.watermark, outcome.judged_count,
                    check.fingerprint(), trigger, self.host,
                ),
            ).fetchone()  # fmt: skip
        return CheckResult(
            check=check.name,
            status=status,
            severity=check.severity,
            violations=violations,
            samples=samples,
            duration_seconds=duration,
            mode=outcome.mode,
            started_at=started_at,
            finished_at=finished_at,
            description=check.description,
            note=outcome.note,
            run_id=int(row[0]) if row else None,
        )

    def _record_error(
        self,
        check: Check,
        *,
        error: DqError,
        started_at: dt.datetime,
        finished_at: dt.datetime,
        duration: float,
        mode: Mode,
        trigger: str,
    ) -> CheckResult:
        kind = error_kind(error)
        row = self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (check_name, started_at, finished_at, mode, status, severity,"
                " error, error_kind, fingerprint, trigger, host)"
                " VALUES (%s, %s, %s, %s, 'error', %s, %s, %s, %s, %s, %s) RETURNING id"
            ).format(self._t("check_runs")),
            (
                check.name, started_at, finished_at, mode.value, check.severity.value,
                str(error), kind, check.fingerprint(), trigger, self.host,
            ),
        ).fetchone()  # fmt: skip
        return CheckResult(
            check=check.name,
            status=Status.ERROR,
            severity=check.severity,
            violations=0,
            samples=(),
            duration_seconds=duration,
            mode=mode,
            started_at=started_at,
            finished_at=finished_at,
            error=str(error),
            description=check.description,
            run_id=int(row[0]) if row else None,
            extra={"error_kind": kind},
        )

    def _replace_findings(self, name: str, evaluation: Evaluation) -> None:
        findings = self._t("findings")
        if evaluation.judged is None:
            self.conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND NOT (run_key = ANY(%s))").format(
                    findings
                ),
                (name, list(evaluation.unsettled)),
            )
        elif evaluation.judged:
            self.conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND run_key = ANY(%s)").format(
                    findings
                ),
                (name, list(evaluation.judged)),
            )
        if not evaluation.findings:
            return
        with self.conn.cursor().copy(
            sql.SQL(
                "COPY {} (check_name, run_key, violations, samples, judged_at) FROM STDIN"
            ).format(findings)
        ) as copy:
            for f in evaluation.findings:
                copy.write_row((name, f.run_key, f.violations, Json(list(f.samples)),
                                evaluation.snapshot_at))  # fmt: skip

    def _totals(self, check: Check, now: dt.datetime) -> tuple[int, tuple[Sample, ...]]:
        findings = self._t("findings")
        row = self.conn.execute(
            sql.SQL("SELECT coalesce(sum(violations), 0) FROM {} WHERE check_name = %s").format(
                findings
            ),
            (check.name,),
        ).fetchone()
        total = int(row[0]) if row else 0
        # Deterministic order (shorter keys first, so run 9 precedes run 10) makes an
        # incremental run and a full sweep pick the same samples.
        rows = self.conn.execute(
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

    def _update_ledger(self, check: Check, evaluation: Evaluation) -> None:
        ledger, baselines = self._t("counter_ledger"), self._t("ledger_baselines")
        assert evaluation.ledger is not None
        if evaluation.note is not None and evaluation.note.startswith("baseline"):
            self.conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s").format(ledger), (check.name,)
            )
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (check_name, taken_at, fingerprint) VALUES (%s, %s, %s)"
                    " ON CONFLICT (check_name) DO UPDATE"
                    " SET taken_at = excluded.taken_at, fingerprint = excluded.fingerprint"
                ).format(baselines),
                (check.name, evaluation.snapshot_at, check.fingerprint()),
            )
        with self.conn.cursor() as cur:
            keys = [k for k, _, _ in evaluation.ledger]
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND run_key = ANY(%s)").format(
                    ledger
                ),
                (check.name, keys),
            )
            kept = [
                (check.name, k, c, f) for k, c, f in evaluation.ledger if (c or 0, f or 0) != (0, 0)
            ]
            if kept:
                with cur.copy(
                    sql.SQL("COPY {} (check_name, run_key, completed, failed) FROM STDIN").format(
                        ledger
                    )
                ) as copy:
                    for item in kept:
                        copy.write_row(item)

    def latest_runs(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The newest recorded run of each named check (for reports and, later, metrics)."""
        with self._translated("reading the latest runs"), self.conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (check_name) check_name, status, violations, mode,"
                    " started_at, finished_at, error FROM {} WHERE check_name = ANY(%s)"
                    " ORDER BY check_name, id DESC"
                ).format(self._t("check_runs")),
                (list(names),),
            )
            cols = [d.name for d in cur.description or ()]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def error_kind(error: DqError) -> str:
    """A short, stable name for the kind of error (exit codes and, later, metrics use it)."""
    if isinstance(error, DatabaseUnavailable | StoreUnavailable):
        return "unavailable"
    if isinstance(error, ConfigError):
        return "config"
    if isinstance(error, QueryTimeout):
        return "timeout"
    return "failed"
