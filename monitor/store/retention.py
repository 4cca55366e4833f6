"""Retention: old history deleted in bounded batches, each its own short transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from config import count

from .tables import StateTables

# What a prune deletes from, in this order; the migration audit and archive, pending alert
# messages, findings, check memory and the stats counters are never deleted.
PRUNED = ("check_runs", "alert_outbox", "silences", "pgss_samples")
SERVICE_KEY = "retention"

Progress = Callable[[str, int], object]  # (table, rows deleted from it so far)


@dataclass(frozen=True)
class PruneResult:
    """What one prune deleted; `skipped` when another prune held the lock."""

    started_at: dt.datetime | None  # the database's clock
    cutoff: dt.datetime | None  # rows older than this were deleted (the database's clock)
    deleted: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    skipped: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def summary(self) -> str:
        """One line: what was deleted, from what, in how many batches."""
        if self.skipped:
            return "prune skipped: another prune of this state store is running"
        parts = ", ".join(f"{n:,} {table}" for table, n in self.deleted.items() if n)
        cutoff = f"{self.cutoff:%Y-%m-%d %H:%M} UTC" if self.cutoff else "?"
        return (
            f"pruned {count(self.total, 'row')} older than {cutoff} "
            f"({parts or 'nothing to delete'}) in {count(self.batches, 'batch')}, "
            f"{self.seconds:.1f}s"
        )


class Pruner:
    """One prune over one connection: the cutoff is fixed once, by the database's clock."""

    def __init__(
        self, conn: psycopg.Connection[Any], t: StateTables, batch_size: int,
        progress: Progress | None,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.t = t
        self.batch_size = batch_size
        self.progress = progress
        self.batches = 0
        self.deleted = dict.fromkeys(PRUNED, 0)

    def lock(self) -> bool:
        """Take the prune lock for this session; False when another prune holds it."""
        row = self.conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._lock_key(),)
        ).fetchone()
        return bool(row and row[0])

    def unlock(self) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (self._lock_key(),))

    def _lock_key(self) -> str:
        return f"dq-monitor-prune:{self.t.schema}"

    def clock(self, keep: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
        row = self.conn.execute("SELECT now(), now() - %s::interval", (keep,)).fetchone()
        assert row is not None
        return row[0], row[1]

    def check_runs(self, cutoff: dt.datetime, evidence: dt.timedelta) -> None:
        """Runs finished before `cutoff`, except each check's last successful run and last
        full sweep (the next run's window and the sweep schedule start from them), and the
        runs in the gate window before each applied migration (its audit's evidence)."""
        runs, stats = self.t("check_runs"), self.t("check_stats")
        protected = [r[0] for r in self.conn.execute(
            sql.SQL(
                "SELECT l.id FROM {stats} AS c CROSS JOIN LATERAL ("
                " (SELECT id FROM {runs} AS r WHERE r.check_name = c.check_name"
                "  AND r.status IN ('ok', 'violation') ORDER BY r.id DESC LIMIT 1)"
                " UNION ALL (SELECT id FROM {runs} AS r WHERE r.check_name = c.check_name"
                "  AND r.mode = 'full' AND r.status IN ('ok', 'violation')"
                "  ORDER BY r.id DESC LIMIT 1)) AS l"
            ).format(stats=stats, runs=runs)
        ).fetchall()]  # fmt: skip
        # Keyset batches in (started_at, id) order: each starts where the previous one ended,
        # so the runs that stay (protected, or still running at the cutoff) are read once, and
        # the walk stops at the cutoff, never reading the history that stays.
        query = sql.SQL(
            "WITH doomed AS (SELECT id, started_at FROM {runs} AS r"
            " WHERE (started_at, id) > (%(after_t)s, %(after)s) AND started_at < %(cutoff)s"
            " ORDER BY started_at, id LIMIT %(n)s),"
            " gone AS (DELETE FROM {runs} AS r USING doomed WHERE r.id = doomed.id"
            " AND r.finished_at < %(cutoff)s AND r.id <> ALL(%(protected)s)"
            " AND NOT EXISTS (SELECT FROM {audit} AS a WHERE a.status = 'applied'"
            "  AND r.finished_at BETWEEN a.started_at - %(evidence)s::interval AND a.started_at)"
            " RETURNING r.id)"
            " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM doomed),"
            " last.started_at, last.id FROM (SELECT started_at, id FROM doomed"
            "  ORDER BY started_at DESC, id DESC LIMIT 1) AS last"
        ).format(runs=runs, audit=self.t("migration_audit"))
        params: dict[str, Any] = {
            "cutoff": cutoff, "protected": protected, "evidence": evidence, "n": self.batch_size,
            "after_t": dt.datetime.min.replace(tzinfo=dt.UTC), "after": 0,
        }  # fmt: skip
        while True:
            with self.conn.transaction():
                row = self.conn.execute(query, params).fetchone()
            if row is None:  # nothing left before the cutoff
                return
            deleted, walked, params["after_t"], params["after"] = row
            if deleted:
                self._count("check_runs", int(deleted))
            if walked < self.batch_size:
                return

    def outbox(self, cutoff: dt.datetime) -> None:
        """Delivered and dead messages queued or sent before `cutoff`; never pending ones."""
        table = self.t("alert_outbox")
        query = sql.SQL(
            "WITH doomed AS (SELECT id FROM {o} WHERE id > %(after)s"
            " AND status IN ('sent', 'dead') AND coalesce(sent_at, created_at) < %(cutoff)s"
            " ORDER BY id LIMIT %(n)s),"
            " gone AS (DELETE FROM {o} WHERE id IN (SELECT id FROM doomed) RETURNING id)"
            " SELECT count(*), max(id) FROM gone"
        ).format(o=table)
        self._by_key("alert_outbox", query, {"cutoff": cutoff})

    def silences(self, cutoff: dt.datetime) -> None:
        """Silences that ended (or were removed) before `cutoff`."""
        query = sql.SQL(
            "WITH doomed AS (SELECT id FROM {s} WHERE id > %(after)s"
            " AND coalesce(removed_at, ends_at) < %(cutoff)s ORDER BY id LIMIT %(n)s),"
            " gone AS (DELETE FROM {s} WHERE id IN (SELECT id FROM doomed) RETURNING id)"
            " SELECT count(*), max(id) FROM gone"
        ).format(s=self.t("silences"))
        self._by_key("silences", query, {"cutoff": cutoff})

    def pgss_samples(self, cutoff: dt.datetime) -> None:
        """Samples before `cutoff` but each server's latest of them: a window starting after
        the cutoff still finds the sample it starts from, on the primary and every standby."""
        query = sql.SQL(
            "WITH keep AS (SELECT server, max(sampled_at) AS at FROM {p}"
            " WHERE sampled_at <= %(cutoff)s GROUP BY server),"
            " doomed AS (SELECT p.server, p.sampled_at FROM {p} p JOIN keep USING (server)"
            " WHERE p.sampled_at < keep.at ORDER BY p.sampled_at LIMIT %(n)s),"
            " gone AS (DELETE FROM {p} WHERE (server, sampled_at) IN (SELECT * FROM doomed)"
            " RETURNING 1)"
            " SELECT count(*) FROM gone"
        ).format(p=self.t("pgss_samples"))
        while True:
            n = self._batch(query, {"cutoff": cutoff, "n": self.batch_size})[0]
            if not self._count("pgss_samples", n):
                return

    def _by_key(self, table: str, query: sql.Composed, params: dict[str, Any]) -> None:
        # Keyset batches: each starts after the last id deleted, so rows that stay (and were
        # passed) are not read again.
        after = 0
        while True:
            n, last = self._batch(query, {**params, "after": after, "n": self.batch_size})
            if not self._count(table, n):
                return
            after = last

    def _batch(self, query: sql.Composed, params: dict[str, Any]) -> tuple[int, int]:
        with self.conn.transaction():
            row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return int(row[0]), (int(row[1] or 0) if len(row) > 1 else 0)

    def run(self, keep: dt.timedelta, evidence: dt.timedelta, monotonic: Callable[[], float]
            ) -> PruneResult:  # fmt: skip
        """Delete everything older than `keep` from every pruned table, table by table."""
        began = monotonic()
        now, cutoff = self.clock(keep)
        self.check_runs(cutoff, evidence)
        self.outbox(cutoff)
        self.silences(cutoff)
        self.pgss_samples(cutoff)
        return PruneResult(now, cutoff, dict(self.deleted), self.batches, monotonic() - began)

    def publish(self, result: PruneResult) -> None:
        """Keep the prune's outcome, with running totals, where every replica's metrics read."""
        key = self.t("service_state")
        row = self.conn.execute(
            sql.SQL("SELECT value FROM {} WHERE key = %s").format(key), (SERVICE_KEY,)
        ).fetchone()
        before = row[0].get("totals", {}) if row and isinstance(row[0], dict) else {}
        totals = {t: int(before.get(t, 0)) + n for t, n in result.deleted.items()}
        value = {
            "at": result.started_at.isoformat() if result.started_at else None,
            "cutoff": result.cutoff.isoformat() if result.cutoff else None,
            "deleted": result.deleted, "totals": totals, "batches": result.batches,
            "seconds": result.seconds,
        }  # fmt: skip
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (key, value, updated_at) VALUES (%s, %s, now())"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()"
            ).format(key),
            (SERVICE_KEY, Jsonb(value)),
        )

    def _count(self, table: str, n: int) -> bool:
        if not n:
            return False
        self.batches += 1
        self.deleted[table] += n
        if self.progress is not None:
            self.progress(table, self.deleted[table])
        return True
