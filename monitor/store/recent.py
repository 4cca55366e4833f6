"""What the status page shows of recent runs: each check's latest run, and its last 24 h."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from .rows import LatestRun, TrendBucket
from .tables import StateTables

TREND_WINDOW = dt.timedelta(hours=24)
TREND_BUCKETS = 48  # half an hour each

_LATEST = (
    "status", "severity", "mode", "started_at", "finished_at", "violations", "error",
    "error_kind", "note", "samples",
)  # fmt: skip


def read_latest(conn: psycopg.Connection[Any], t: StateTables) -> dict[str, LatestRun]:
    """Each check's latest run that ran (skipped runs left out), with its recorded samples."""
    # One index probe per check that has stats (check_runs_check_id_idx), never a scan of the
    # whole history.
    query = sql.SQL(
        "SELECT s.check_name, {outer} FROM {stats} s CROSS JOIN LATERAL ("
        " SELECT {columns} FROM {runs} r WHERE r.check_name = s.check_name"
        " AND r.status IN ('ok', 'violation', 'error') ORDER BY r.id DESC LIMIT 1) r"
    ).format(
        outer=sql.SQL(", ").join(sql.Identifier("r", c) for c in _LATEST),
        columns=sql.SQL(", ").join(map(sql.Identifier, _LATEST)),
        stats=t("check_stats"),
        runs=t("check_runs"),
    )
    found = {}
    for row in conn.execute(query).fetchall():
        values = dict(zip(_LATEST, row[1:], strict=True))
        values["samples"] = tuple(values["samples"] or ())
        found[row[0]] = LatestRun(row[0], **values)
    return found


def read_trends(
    conn: psycopg.Connection[Any], t: StateTables
) -> tuple[dt.datetime, dict[str, tuple[TrendBucket, ...]]]:
    """The database's now() and, per check, the buckets of TREND_WINDOW holding runs.

    Buckets are counted back from the database's clock, not the host's. A run stamped a
    little ahead of it (a host clock running fast) falls in the newest bucket.
    """
    width = TREND_WINDOW.total_seconds() / TREND_BUCKETS
    # The database's clock read once and passed in: the buckets count back from the same
    # instant the caller is told, in a transaction or not.
    now_row = conn.execute("SELECT now()").fetchone()
    assert now_row is not None
    rows = conn.execute(
        sql.SQL(
            "SELECT check_name,"
            " greatest(0, floor(extract(epoch FROM %(now)s - started_at) / %(width)s))::int AS b,"
            " max(violations) FILTER (WHERE status IN ('ok', 'violation')),"
            " count(*) FILTER (WHERE status = 'error'), count(*)"
            " FROM {} WHERE started_at > %(now)s - %(window)s"
            " AND status IN ('ok', 'violation', 'error')"
            " GROUP BY check_name, b ORDER BY check_name, b"
        ).format(t("check_runs")),
        {"now": now_row[0], "width": width, "window": TREND_WINDOW},
    ).fetchall()
    trends: dict[str, list[TrendBucket]] = {}
    for check, index, violations, errors, runs in rows:
        bucket = TrendBucket(index, None if violations is None else int(violations), errors, runs)
        trends.setdefault(check, []).append(bucket)
    return now_row[0], {name: tuple(buckets) for name, buckets in trends.items()}
