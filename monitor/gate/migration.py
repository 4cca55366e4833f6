"""Migration 005, guarded: gate re-checked, one apply at a time, archive verified, drop, audit.

Every attempt runs with a short lock_timeout and is retried a bounded number of times; it
never waits for a lock without a timeout. Once the table is locked, the catalog is read again
(an object created while the apply waited refuses it); after the migration SQL, the table's
catalog must have lost the two columns and nothing else, or the transaction rolls back. The
drop has no CASCADE, so anything that still depends on a column makes it fail instead of
silently dropping that object.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from alerts import Clock
from checks import table_ref
from config import GateError, Settings, noun
from monitor.db import ConnectionSource
from monitor.gate import evidence, table_catalog
from monitor.gate.guarded import GuardedMigration, Progress
from monitor.gate.own_statements import (
    checksum_sql,
    copy_out_sql,
    restore_checksum_sql,
    restore_update_sql,
    table_checksum_sql,
)
from monitor.gate.plans import Plan
from monitor.store import AppliedMigration, StateStore

__all__ = ["Migrator", "Progress"]


class _TransactionEnded(GateError):
    """The migration SQL committed or rolled back on its own: its changes may be permanent."""


class Migrator(GuardedMigration):
    """Applies or rolls back migration 005 (plan drop_counter_columns) on the monitored database.

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
        super().__init__(settings, store, source, clock, plan, progress=progress)
        self.plan = plan
        self.ref = table_ref(settings.tables, "run_metadata")
        self.cols = [sql.Identifier(c) for c in plan.columns]
        self.run_col = self.ref.col("run_id")

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
                rows, checksum = self._attempts(lambda: self._archive_and_drop(conn, audit))
            except Exception as exc:
                self._audit_finish(audit, "failed", error=str(exc))
                raise
            self._audit_finish(audit, "applied", rows=rows, checksum=checksum)
            self.say(f"applied: dropped {', '.join(self.plan.columns)}; audit #{audit}")
            return audit

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
                rows, checksum = self._attempts(lambda: self._restore(conn, applied))
            except Exception as exc:
                self._audit_finish(audit, "failed", error=str(exc))
                raise
            self._audit_finish(audit, "applied", rows=rows, checksum=checksum)
            self.say(f"rolled back: re-added {', '.join(self.plan.columns)}, restored {rows:,} "
                     f"{noun(rows, 'row')} from audit #{applied.id}; audit #{audit}")  # fmt: skip
            return audit

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

    def _begin_locked(self, conn: psycopg.Connection[Any]) -> None:
        self._set_timeouts(conn)
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
                raise GateError(f"archive verification failed: {count} {noun(count, 'row')} "
                                f"({checksum}) in the table, {archived} archived; nothing "
                                "changed")  # fmt: skip
            self.say(archived_line(int(count)))
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
            self.say(restored_line(restored, int(applied.archive_rows) - restored))
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
        applied = self.audit.last_applied(self.plan.name)
        if applied is None:
            raise GateError("refused: no applied migration is recorded in the state store")
        return applied


def archived_line(rows: int) -> str:
    """What the apply says once the archive is verified."""
    return (f"archived {rows:,} {noun(rows, 'row')} into the state store; count and checksum "
            "verified")  # fmt: skip


def restored_line(restored: int, gone: int) -> str:
    """What the rollback says once the values are verified; `gone`: archived runs deleted since."""
    note = ""
    if gone:
        note = (f"; {gone:,} archived {noun(gone, 'run')} no longer {noun(gone, 'exists', 'exist')}"
                f" and {noun(gone, 'was', 'were')} skipped")  # fmt: skip
    rows = f"{restored:,} {noun(restored, 'row')}"
    return f"restored {rows}; values verified against the archive{note}"
