"""Migration 005, guarded: gate re-checked, one apply at a time, archive verified, drop, audit.

Every attempt runs with a short lock_timeout and is retried a bounded number of times; it
never waits for a lock without a timeout. Once the table is locked, the catalog is read again
(an object created while the apply waited refuses it); after the migration SQL, the table's
catalog must have lost the two columns and nothing else, or the transaction rolls back. The
drop has no CASCADE, so anything that still depends on a column makes it fail instead of
silently dropping that object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg
from psycopg import sql

from alerts import Clock
from checks import describe_pg_error, table_ref
from config import GateError, Settings, format_duration
from monitor.db import ConnectionSource, Target, connect, translate
from monitor.gate import evidence, table_catalog
from monitor.gate.gatekeeper import Gatekeeper
from monitor.gate.own_statements import (
    checksum_sql,
    copy_out_sql,
    restore_checksum_sql,
    restore_update_sql,
    table_checksum_sql,
)
from monitor.gate.plans import Plan
from monitor.gate.verdict import Decision, GateReport
from monitor.store import AppliedMigration, AuditStart, MigrationAudit, StateStore

Progress = Callable[[str], None]


class _TransactionEnded(GateError):
    """The migration SQL committed or rolled back on its own: its changes may be permanent."""


class Migrator:
    """Applies or rolls back migration 005 against the monitored database.

    The audit and the archive go to `store`; the gate is re-evaluated with `source` (the
    monitored database, read-only); the migration itself runs on the owner's own session.
    """

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: ConnectionSource,
        clock: Clock,
        plan: Plan,
        *,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.clock = clock
        self.audit = MigrationAudit(store)
        self.plan = plan
        self.say = progress
        self.ref = table_ref(settings.tables, "run_metadata")
        self.cols = [sql.Identifier(c) for c in plan.columns]
        self.run_col = self.ref.col("run_id")

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        """The owner's session; a psycopg error anywhere in it leaves translated."""
        url = self.settings.database_url
        assert url is not None
        target = Target(url, "database", "DQ_DATABASE_URL")
        try:
            with connect(url, purpose="database",
                         connect_timeout=self.settings.connect_timeout) as conn:  # fmt: skip
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, target, "migrating") from exc

    def apply(self, operator: str) -> int:
        """Apply the migration; returns the audit id. Raises GateError when refused."""
        with self._connect() as conn:
            self._exclusive(conn)
            evidence.relations(conn, self.settings)  # a missing table is a wrong setting
            present = self._present(conn)
            if not present:
                raise GateError("refused: the columns are already dropped (nothing to apply)")
            if len(present) < len(self.plan.columns):
                only = ", ".join(present)
                raise GateError(
                    f"refused: the columns are partially dropped (only {only} remains); "
                    "finish or repair by hand"
                )
            report = self._open_gate()
            definitions = self._definitions(conn)
            audit = self._audit_start(conn, "apply", operator, report, definitions)
            try:
                rows, checksum = self._attempts(conn, lambda: self._archive_and_drop(conn, audit))
            except Exception as exc:
                self._audit_finish(audit, "failed", error=str(exc))
                raise
            self._audit_finish(audit, "applied", rows=rows, checksum=checksum)
            self.say(f"applied: dropped {', '.join(self.plan.columns)}; audit #{audit}")
            return audit

    def _open_gate(self) -> GateReport:
        """The gate's report, re-evaluated now; raises GateError unless it is open."""
        report = Gatekeeper(
            self.settings, self.store, self.source, self.clock, self.plan.gating_checks
        ).evaluate()
        if report.warning:
            self.say(report.warning)
        if report.decision is not Decision.OPEN:
            # The headline's named list, as `dq-monitor gate` prints it.
            reasons = report.headline().partition(": ")[2]
            raise GateError(f"refused: the gate is {report.decision.value} ({reasons}); "
                            "run `dq-monitor gate` for the evidence")  # fmt: skip
        self.say(f"gate: open (evidence hash {report.evidence_hash()})")
        return report

    def rollback(self, operator: str) -> int:
        """Re-add the columns and restore the archived values; returns the audit id."""
        with self._connect() as conn:
            self._exclusive(conn)
            evidence.relations(conn, self.settings)  # a missing table is a wrong setting
            if self._present(conn):
                raise GateError("refused: a column exists; there is nothing to roll back")
            applied = self._last_applied()
            audit = self._audit_start(conn, "rollback", operator, None, applied.columns)
            try:
                rows, checksum = self._attempts(conn, lambda: self._restore(conn, applied))
            except Exception as exc:
                self._audit_finish(audit, "failed", error=str(exc))
                raise
            self._audit_finish(audit, "applied", rows=rows, checksum=checksum)
            self.say(f"rolled back: re-added {', '.join(self.plan.columns)}, restored {rows} "
                     f"rows from audit #{applied.id}; audit #{audit}")  # fmt: skip
            return audit

    def _exclusive(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
            (f"dq-monitor-migrate:{self.plan.table}",),
        ).fetchone()
        if not row or not row[0]:
            raise GateError("refused: another `dq-monitor migrate` is running on this database")

    def _present(self, conn: psycopg.Connection[Any]) -> list[str]:
        """Which of the deprecated columns exist now."""
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attname = ANY(%s) AND NOT attisdropped ORDER BY attnum",
            (self.plan.table, self.plan.columns),
        ).fetchall()
        return [r[0] for r in rows]

    def _definitions(self, conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = to_regclass(%s) AND a.attname = ANY(%s) ORDER BY a.attnum",
            (self.plan.table, self.plan.columns),
        ).fetchall()
        return [{"name": r[0], "type": r[1], "not_null": r[2], "default": r[3]} for r in rows]

    def _attempts(
        self, conn: psycopg.Connection[Any], work: Callable[[], tuple[int, str]]
    ) -> tuple[int, str]:
        gate = self.settings.gate
        for attempt in range(1, gate.lock_retries + 1):
            self.say(f"locking {self.plan.table} (attempt {attempt}/{gate.lock_retries}, "
                     f"lock_timeout {format_duration(gate.lock_timeout)})")  # fmt: skip
            try:
                return work()
            except pg.LockNotAvailable:
                if attempt == gate.lock_retries:
                    break
                wait = min(30.0, 0.5 * 2**attempt)
                self.say(f"the table is busy; retrying in {wait:.1f}s")
                self.clock.sleep(wait)
            except psycopg.Error as exc:
                raise GateError(
                    f"migration failed, nothing changed: {describe_pg_error(exc)}"
                ) from exc
        raise GateError(
            f"gave up: could not lock {self.plan.table} within "
            f"{format_duration(gate.lock_timeout)} in {gate.lock_retries} attempts; nothing "
            "changed. Retry when the table is quieter."
        )

    def _begin_locked(self, conn: psycopg.Connection[Any]) -> None:
        # In whole milliseconds, rounded up: 0 would turn the timeout off.
        gate = self.settings.gate
        timeout = str(max(1, math.ceil(gate.lock_timeout.total_seconds() * 1000)))
        statement = str(max(1, math.ceil(gate.statement_timeout.total_seconds() * 1000)))
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true),"
            " set_config('statement_timeout', %s, true)",
            (timeout, statement),
        )
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(self.ref.ident))

    def _recheck_locked(self, conn: psycopg.Connection[Any]) -> None:
        """With the lock held, nothing can change the table any more: read the catalog again.

        The gate was evaluated before the lock; an index, constraint or view committed while
        the apply waited for it would otherwise be dropped with the columns, or fail the drop.
        """
        found = evidence.dependencies(conn, self.settings, evidence.relations(conn, self.settings))
        if found:
            what = "; ".join(f"{obj} {use}" for obj, use in found)
            raise GateError(f"refused after locking {self.plan.table}: {what} (created while "
                            "the apply waited for its lock); nothing changed")  # fmt: skip
        present = self._present(conn)
        if sorted(present) != sorted(self.plan.columns):
            raise GateError(f"refused after locking {self.plan.table}: the columns changed "
                            f"while the apply waited (now: {', '.join(present) or 'none'}); "
                            "nothing changed")  # fmt: skip

    def _run_verified(self, conn: psycopg.Connection[Any]) -> None:
        """Run the migration SQL; raise GateError unless exactly the two columns went."""
        before = table_catalog.snapshot(conn, self.plan.table)
        conn.execute(self.plan.sql_text)
        if conn.info.transaction_status is not psycopg.pq.TransactionStatus.INTRANS:
            raise _TransactionEnded("the migration SQL ended the transaction, so its changes "
                                    "may be committed and the archive is kept: inspect the "
                                    "table before anything else")  # fmt: skip
        left = self._present(conn)
        if left:
            raise GateError(
                f"the migration SQL left {', '.join(left)} in place; rolled back, nothing changed"
            )
        after = table_catalog.snapshot(conn, self.plan.table)
        changes = table_catalog.unplanned_changes(before, after, self.plan.columns)
        if changes:
            raise GateError("the migration SQL changed more than the two columns: "
                            + "; ".join(changes) + "; rolled back, nothing changed")  # fmt: skip

    def _archive_and_drop(self, conn: psycopg.Connection[Any], audit: int) -> tuple[int, str]:
        with conn.transaction():
            self._begin_locked(conn)
            self._recheck_locked(conn)
            count, checksum = conn.execute(table_checksum_sql(self.ref)).fetchone() or (0, "0")
            copied = self._copy_to_archive(conn, audit)
            archived = self.audit.archive_checksum(audit, checksum_sql)
            if (copied, (count, checksum)) != (count, archived):
                self.audit.drop_archive(audit)
                raise GateError(f"archive verification failed: {count} rows ({checksum}) in the "
                                f"table, {archived} archived; nothing changed")  # fmt: skip
            self.say(f"archived {count} rows into the state store; count and checksum verified")
            try:
                self._run_verified(conn)
            except (psycopg.Error, GateError) as exc:
                if not isinstance(exc, _TransactionEnded):
                    self.audit.drop_archive(audit)
                raise
        return int(count), str(checksum)

    def _copy_to_archive(self, conn: psycopg.Connection[Any], audit: int) -> int:
        with conn.cursor().copy(copy_out_sql(self.ref)) as source:
            return self.audit.write_archive(audit, source.rows())

    def _restore(self, conn: psycopg.Connection[Any], applied: AppliedMigration) -> tuple[int, str]:
        with conn.transaction():
            self._begin_locked(conn)
            for column in applied.columns:
                conn.execute(self._add_column(column))
            conn.execute("CREATE TEMP TABLE dq_restore (run_key text PRIMARY KEY, c bigint,"
                         " f bigint) ON COMMIT DROP")  # fmt: skip
            with conn.cursor().copy("COPY dq_restore (run_key, c, f) FROM STDIN") as sink:
                self.audit.read_archive(applied.id, sink.write_row)
            restored = conn.execute(restore_update_sql(self.ref)).rowcount
            # Runs deleted since the apply cannot be restored; every run that still exists
            # must now hold exactly its archived values.
            sums = [
                conn.execute(restore_checksum_sql(self.ref, side)).fetchone()
                for side in ("table", "archive")
            ]
            if sums[0] != sums[1]:
                raise GateError(
                    f"restore verification failed: the table holds {sums[0]}, the archive "
                    f"{sums[1]}; rolled back, nothing changed"
                )
            gone = int(applied.archive_rows) - restored
            note = f"; {gone} archived runs no longer exist and were skipped" if gone else ""
            self.say(f"restored {restored} rows; values verified against the archive{note}")
            count, checksum = sums[0] or (0, "0")
        return int(count), str(checksum)

    def _add_column(self, column: dict[str, Any]) -> sql.Composed:
        kind = str(column["type"])
        if not re.fullmatch(r"[A-Za-z0-9_ (),.\[\]\"]+", kind):
            raise GateError(f"cannot re-create column {column['name']}: unexpected type {kind!r}")
        parts = [sql.SQL("ALTER TABLE {} ADD COLUMN {} ").format(
            self.ref.ident, sql.Identifier(column["name"])), sql.SQL(kind)]  # fmt: skip
        if column.get("default") is not None:
            parts.append(sql.SQL(" DEFAULT ") + sql.SQL(str(column["default"])))
        if column.get("not_null"):
            parts.append(sql.SQL(" NOT NULL"))
        return sql.Composed(parts)

    def _last_applied(self) -> AppliedMigration:
        applied = self.audit.last_applied()
        if applied is None:
            raise GateError("refused: no applied migration is recorded in the state store")
        return applied

    def _audit_start(self, conn: psycopg.Connection[Any], action: str, operator: str,
                     report: GateReport | None, columns: list[dict[str, Any]]) -> int:  # fmt: skip
        user = conn.execute("SELECT current_user").fetchone()
        return self.audit.start(AuditStart(
            action=action, operator=operator, database_user=user[0] if user else "?",
            gate_evidence_hash=report.evidence_hash() if report else None,
            gate_settings=report.settings if report else None,
            sql_checksum=self.plan.sql_checksum, sql_text=self.plan.sql_text, columns=columns,
        ))  # fmt: skip

    def _audit_finish(self, audit: int, status: str, *, rows: int | None = None,
                      checksum: str | None = None, error: str | None = None) -> None:  # fmt: skip
        self.audit.finish(audit, status, rows=rows, checksum=checksum, error=error)
