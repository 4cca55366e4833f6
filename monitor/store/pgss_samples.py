"""The gate's pg_stat_statements samples: one row per evaluation and server, latest counters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from monitor.store.tables import qualified

if TYPE_CHECKING:  # the row types stay importable without the store's dependencies
    from monitor.store.state_store import StateStore

#: The server name of the primary's samples; a standby's are named by its host:port.
PRIMARY_SERVER = "primary"

# (userid, dbid, queryid, toplevel) -> (calls, stats_since)
Counters = dict[tuple[int, int, int, bool], tuple[int, dt.datetime | None]]


@dataclass(frozen=True)
class Sample:
    """A recorded sample: pg_stat_statements_info, and whether statements were sampled."""

    available: bool
    dealloc: int | None
    stats_reset: dt.datetime | None
    statements: int | None


class PgssSamples:
    """Where gate evaluations keep what pg_stat_statements showed them."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    @contextmanager
    def turn(self) -> Iterator[SamplingTurn]:
        """One evaluation's turn, in one transaction: evaluations (service and CLI) take
        turns under an advisory lock, so each compares with the sample before it.

        Raises StoreError or StoreUnavailable.
        """
        schema = self.store.schema
        with self.store.session("sampling pg_stat_statements") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                         (f"dq-monitor-pgss:{schema}",))  # fmt: skip
            yield SamplingTurn(conn, schema)


class SamplingTurn:
    """The sample tables inside one evaluation's locked transaction; every method takes the
    server (PRIMARY_SERVER or a standby's host:port) whose statistics the rows describe."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn = conn
        self.samples = qualified(schema, "pgss_samples")
        self.statements = qualified(schema, "pgss_statements")

    def counters(self, server: str, dbid: int) -> Counters:
        """The per-statement counters the previous sample of this database kept."""
        rows = self.conn.execute(
            sql.SQL("SELECT userid, dbid, queryid, toplevel, calls, stats_since FROM {}"
                    " WHERE server = %s AND dbid = %s").format(self.statements), (server, dbid),
        ).fetchall()  # fmt: skip
        return {(r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in rows}

    def record(
        self, server: str, at: dt.datetime, sample: Sample, lost: int, detail: str | None
    ) -> None:
        """Keep this evaluation's sample (a second one at the same instant is dropped)."""
        self.conn.execute(
            sql.SQL("INSERT INTO {} (server, sampled_at, available, dealloc, stats_reset,"
                    " statements, lost, lost_detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING").format(self.samples),
            (server, at, sample.available, sample.dealloc, sample.stats_reset,
             sample.statements, lost, detail),
        )  # fmt: skip

    def replace_counters(self, server: str, dbid: int, counters: Counters) -> None:
        """Replace this database's per-statement counters with the new sample's."""
        keys = list(counters)
        table = self.statements
        self.conn.execute(sql.SQL("DELETE FROM {} WHERE server = %s AND dbid = %s").format(table),
                          (server, dbid))  # fmt: skip
        self.conn.execute(
            sql.SQL("INSERT INTO {} (server, userid, dbid, queryid, toplevel, calls, stats_since)"
                    " SELECT %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[],"
                    " %s::boolean[], %s::bigint[], %s::timestamptz[])").format(table),
            (server, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
             [k[3] for k in keys], [counters[k][0] for k in keys],
             [counters[k][1] for k in keys]),
        )  # fmt: skip

    def baseline(self, server: str, at: dt.datetime) -> Sample | None:
        """The latest sample taken at or before `at`, if any."""
        row = self.conn.execute(
            sql.SQL("SELECT available, dealloc, stats_reset, statements FROM {} WHERE"
                    " server = %s AND sampled_at <= %s ORDER BY sampled_at DESC LIMIT 1"
                    ).format(self.samples),
            (server, at),
        ).fetchone()  # fmt: skip
        return Sample(bool(row[0]), row[1], row[2], row[3]) if row else None

    def coverage_start(self, server: str, after: dt.datetime) -> tuple[dt.datetime, Sample] | None:
        """The first sample after `after` with per-statement counters and none without them
        since: where coverage began when no sample from before `after` holds it."""
        row = self.conn.execute(
            sql.SQL("SELECT sampled_at, available, dealloc, stats_reset, statements FROM {0}"
                    " WHERE server = %(server)s AND sampled_at > %(after)s AND available"
                    " AND statements IS NOT NULL"
                    " AND sampled_at > coalesce((SELECT max(sampled_at) FROM {0}"
                    "  WHERE server = %(server)s AND sampled_at > %(after)s"
                    "  AND NOT (available AND statements IS NOT NULL)), '-infinity')"
                    " ORDER BY sampled_at LIMIT 1").format(self.samples),
            {"server": server, "after": after},
        ).fetchone()  # fmt: skip
        return (row[0], Sample(bool(row[1]), row[2], row[3], row[4])) if row else None

    def losses(
        self, server: str, after: dt.datetime, now: dt.datetime
    ) -> list[tuple[dt.datetime, int, str]]:
        """(sampled at, how many, whose) for every sample after `after` (but not `now`'s own)
        that found statements lost."""
        rows = self.conn.execute(
            sql.SQL("SELECT sampled_at, lost, coalesce(lost_detail, '') FROM {}"
                    " WHERE server = %s AND sampled_at > %s AND sampled_at <> %s AND lost > 0"
                    " ORDER BY sampled_at").format(self.samples),
            (server, after, now),
        ).fetchall()  # fmt: skip
        return [(r[0], int(r[1]), str(r[2])) for r in rows]
