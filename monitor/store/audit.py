"""The migrations' audit trail (one row per apply or rollback of a plan) and the archive of the
counters drop_counter_columns dropped."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.types.json import Json

from monitor.store.tables import qualified

if TYPE_CHECKING:
    from monitor.store.state_store import StateStore

# The archived counters of one run: (run key, completed_workers, failed_workers).
ArchivedRow = tuple[str, int | None, int | None]
# Builds the row count and checksum query over (source, run column, value columns); the gate
# owns the formula, so the archive is summed exactly as the monitored table was.
ChecksumSql = Callable[[sql.Composable, sql.Composable, list[sql.Composable]], sql.Composed]


@dataclass(frozen=True)
class AuditStart:
    """What an audit row records when an apply or rollback begins."""

    action: str  # apply or rollback
    operator: str
    database_user: str
    gate_evidence_hash: str | None
    gate_settings: dict[str, Any] | None
    sql_checksum: str
    sql_text: str
    columns: list[dict[str, Any]]  # what a rollback re-creates (columns, or the constraint)
    plan: str = "drop_counter_columns"


@dataclass(frozen=True)
class AppliedMigration:
    """The last apply that succeeded: what a rollback restores."""

    id: int
    columns: list[dict[str, Any]]
    archive_rows: int
    archive_checksum: str


class MigrationAudit:
    """The migration_audit rows and, under each apply's audit id, its archived counters."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.audit = qualified(store.schema, "migration_audit")
        self.archive = qualified(store.schema, "migration_archive")

    def start(self, entry: AuditStart) -> int:
        """Record an attempt as started; returns its audit id."""
        with self.store.session("writing the migration audit") as state:
            row = state.execute(
                sql.SQL("INSERT INTO {} (plan, action, status, operator, database_user,"
                        " gate_evidence_hash, gate_settings, sql_checksum, sql_text, columns)"
                        " VALUES (%s, %s, 'started', %s, %s, %s, %s, %s, %s, %s)"
                        " RETURNING id").format(self.audit),
                (entry.plan, entry.action, entry.operator, entry.database_user,
                 entry.gate_evidence_hash,
                 Json(entry.gate_settings) if entry.gate_settings is not None else None,
                 entry.sql_checksum, entry.sql_text, Json(entry.columns)),
            ).fetchone()  # fmt: skip
        assert row is not None
        return int(row[0])

    def finish(
        self, audit: int, status: str, *, rows: int | None = None, checksum: str | None = None,
        error: str | None = None,
    ) -> None:  # fmt: skip
        """Record how the attempt ended: applied or failed (with the archive's count and
        checksum, or the error)."""
        with self.store.session("writing the migration audit") as state:
            state.execute(
                sql.SQL("UPDATE {} SET status = %s, finished_at = now(), archive_rows = %s,"
                        " archive_checksum = %s, error = %s WHERE id = %s").format(self.audit),
                (status, rows, checksum, error, audit),
            )  # fmt: skip

    def last_applied(self, plan: str = "drop_counter_columns") -> AppliedMigration | None:
        """The plan's most recent apply that succeeded, if any."""
        with self.store.session("reading the migration audit") as state:
            row = state.execute(
                sql.SQL("SELECT id, columns, archive_rows, archive_checksum FROM {}"
                        " WHERE plan = %s AND action = 'apply' AND status = 'applied'"
                        " ORDER BY id DESC LIMIT 1").format(self.audit), (plan,)
            ).fetchone()  # fmt: skip
        if row is None:
            return None
        return AppliedMigration(row[0], row[1], row[2], row[3])

    def write_archive(self, audit: int, rows: Iterable[ArchivedRow]) -> int:
        """Copy `rows` into the archive under `audit`, in one transaction; returns how many."""
        target = sql.SQL("COPY {} (audit_id, run_key, completed_workers, failed_workers)"
                         " FROM STDIN").format(self.archive)  # fmt: skip
        copied = 0
        with (
            self.store.session("archiving the counters") as state,
            state.transaction(),
            state.cursor().copy(target) as sink,
        ):
            for run_key, completed, failed in rows:
                sink.write_row((audit, run_key, completed, failed))
                copied += 1
        return copied

    def archive_checksum(self, audit: int, checksum: ChecksumSql) -> tuple[int, str]:
        """The row count and checksum of the archive under `audit`, by the gate's formula."""
        archive = sql.SQL("(SELECT * FROM {} WHERE audit_id = {}) AS a").format(
            self.archive, sql.Literal(audit)
        )
        columns: list[sql.Composable] = [
            sql.SQL("a.completed_workers"),
            sql.SQL("a.failed_workers"),
        ]
        with self.store.session("verifying the archive") as state:
            row = state.execute(checksum(archive, sql.SQL("a.run_key"), columns)).fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    def drop_archive(self, audit: int) -> None:
        """Remove the archive of an apply that failed."""
        with self.store.session("removing a failed archive") as state:
            state.execute(
                sql.SQL("DELETE FROM {} WHERE audit_id = %s").format(self.archive), (audit,)
            )

    def read_archive(self, audit: int, write: Callable[[tuple[Any, ...]], object]) -> None:
        """Stream the archive under `audit` to `write`, one (run key, completed, failed) row
        at a time."""
        source = sql.SQL(
            "COPY (SELECT run_key, completed_workers, failed_workers FROM {}"
            " WHERE audit_id = {}) TO STDOUT"
        ).format(self.archive, sql.Literal(audit))
        with (
            self.store.session("reading the archive") as state,
            state.cursor().copy(source) as out,
        ):
            for row in out.rows():
                write(row)
