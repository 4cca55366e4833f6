"""Per-check stats and the service's published facts: what every replica's metrics show."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from checks import Check, Mode

from . import outbox, recent
from .rows import CheckStats, StoreStats, add_to_buckets
from .runs import SKIPPED
from .tables import StateTables, stats_rows

_CHECK_STATS = (
    "check_name", "severity", "last_status", "last_mode", "last_violations", "last_run_at",
    "last_success_at", "last_duration", "runs_total", "errors_total", "missed_total",
    "overlaps_total", "duration_buckets", "duration_sum",
)  # fmt: skip


def bump_check_stats(
    conn: psycopg.Connection[Any],
    t: StateTables,
    check: Check,
    status: str,
    *,
    mode: Mode | None,
    violations: int | None,
    at: dt.datetime,
    duration: float | None,
) -> None:
    """Count one recorded run (or skip) in the check's stats row."""
    stats = t("check_stats")
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (check_name, severity) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        ).format(stats),
        (check.name, check.severity.value),
    )
    row = conn.execute(
        sql.SQL("SELECT duration_buckets FROM {} WHERE check_name = %s FOR UPDATE").format(stats),
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


def write_service_state(
    conn: psycopg.Connection[Any], t: StateTables, key: str, value: dict[str, Any]
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (key, value, updated_at) VALUES (%s, %s, now())"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()"
        ).format(t("service_state")),
        (key, Jsonb(value)),
    )


def read_service_state(
    conn: psycopg.Connection[Any], t: StateTables, key: str
) -> dict[str, Any] | None:
    row = conn.execute(
        sql.SQL("SELECT value FROM {} WHERE key = %s").format(t("service_state")), (key,)
    ).fetchone()
    return dict(row[0]) if row and isinstance(row[0], dict) else None


def read_stats(conn: psycopg.Connection[Any], t: StateTables) -> StoreStats:
    """Check stats, delivery stats, the service's facts and each check's latest run, in one
    snapshot for metrics and the status page."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        checks = {
            values["check_name"]: CheckStats(**values)
            for values in stats_rows(conn, t("check_stats"), _CHECK_STATS)
        }
        state = conn.execute(sql.SQL("SELECT key, value FROM {}").format(t("service_state")))
        service = {key: value for key, value in state.fetchall() if isinstance(value, dict)}
        delivery = outbox.read_delivery(conn, t)
        latest = recent.read_latest(conn, t)
    return StoreStats(checks=checks, delivery=delivery, service=service, latest=latest)
