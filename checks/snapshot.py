"""One consistent read-only view of the monitored database: REPEATABLE READ, with a timeout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql
from psycopg import sql as _sql

from .replay import replay_point


@dataclass
class Snapshot:
    """A cursor inside the snapshot transaction, and the server's time when it began (on a
    standby: the time its data was replayed to, see checks.replay)."""

    cursor: psycopg.Cursor[Any]
    now: dt.datetime

    def fetch(
        self, query: _sql.SQL | _sql.Composed, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        self.cursor.execute(query, params)
        return self.cursor.fetchall()


@contextmanager
def snapshot(
    conn: psycopg.Connection[Any],
    statement_timeout: dt.timedelta,
    max_replay_lag: dt.timedelta | None = None,
) -> Iterator[Snapshot]:
    """Open a REPEATABLE READ READ ONLY transaction with statement_timeout set locally.

    With `max_replay_lag` the server is a hot standby: the snapshot's `now` is the point
    its data was replayed to, so the settle time also waits out the replay lag. Raises
    psycopg errors untranslated (the caller translates them with its own context), and
    SetupError or QueryFailed when the standby is not one or is too far behind.
    """
    replay = replay_point(conn, max_replay_lag) if max_replay_lag is not None else None
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    timeout_ms = str(max(1, int(statement_timeout.total_seconds() * 1000)))
    with conn.transaction(), conn.cursor() as cur:
        # set_config(..., true) is SET LOCAL: it ends with the transaction and takes a parameter.
        cur.execute(
            sql.SQL("SELECT set_config('statement_timeout', %s, true), now()"), (timeout_ms,)
        )
        row = cur.fetchone()
        assert row is not None
        yield Snapshot(cursor=cur, now=row[1] if replay is None else min(row[1], replay.as_of))
