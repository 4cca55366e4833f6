"""Alert outbox rows: enqueue, claim the next due one, mark it sent, retried or dead; counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from alerts import Notification, Outcome, QueuedMessage

from .rows import DeliveryStats, RouteDelivery, add_to_buckets
from .tables import StateTables, stats_rows

_DELIVERY = ("route", "sent_total", "failed_total", "dead_total", "duration_buckets",
             "duration_sum")  # fmt: skip


def enqueue(
    conn: psycopg.Connection[Any], t: StateTables, message: Notification, now: dt.datetime
) -> None:
    """Queue `message`, due now; a message already queued (same idempotency key) stays."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (idempotency_key, fingerprint, check_name, route, kind,"
            " payload, created_at, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s,"
            " %s, %s) ON CONFLICT (idempotency_key) DO NOTHING"
        ).format(t("alert_outbox")),
        (message.idempotency_key, message.fingerprint, message.check, message.route,
         message.kind.value, Json(message.to_json()), now, now),
    )  # fmt: skip


class OutboxRows:
    """The outbox as alerts.OutboxSender sees it (implements alerts.OutboxStore)."""

    def __init__(self, tables: StateTables) -> None:
        self.t = tables

    @contextmanager
    def claim_due(self, now: dt.datetime) -> Iterator[Claim | None]:
        """The next due message, its row locked in a transaction that commits on exit."""
        with self.t.session("querying") as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT id, route, payload, attempts, created_at, last_error FROM {o} AS o"
                    " WHERE status = 'pending' AND next_attempt_at <= %s"
                    " AND NOT EXISTS (SELECT 1 FROM {o} AS p WHERE p.fingerprint = o.fingerprint"
                    " AND p.status = 'pending' AND p.id < o.id)"
                    " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                ).format(o=self.t("alert_outbox")),
                (now,),
            )
            found = cur.fetchone()
            yield None if found is None else Claim(conn, self.t, QueuedMessage(*found))

    def counts(self) -> tuple[int, int]:
        """(pending, dead) messages now."""
        with self.t.session("counting the alert outbox") as conn:
            return _count(conn, self.t, _PENDING), _count(conn, self.t, _DEAD)


class Claim:
    """One claimed message (implements alerts.OutboxClaim); counts each outcome per route."""

    def __init__(self, conn: psycopg.Connection[Any], t: StateTables, message: QueuedMessage):
        self.conn = conn
        self.t = t
        self._message = message

    @property
    def message(self) -> QueuedMessage:
        return self._message

    def mark_sent(self, outcome: Outcome, now: dt.datetime, took: float) -> None:
        self._finish("sent", outcome, now, took)

    def mark_dead(self, outcome: Outcome) -> None:
        self._finish("dead", outcome, None, None)

    def mark_retry(self, outcome: Outcome, attempts: int, now: dt.datetime, delay: float) -> None:
        self.conn.execute(
            sql.SQL(
                "UPDATE {} SET attempts = %s, last_error = %s, response_status = %s,"
                " next_attempt_at = %s + make_interval(secs => %s) WHERE id = %s"
            ).format(self.t("alert_outbox")),
            (attempts, outcome.reason, outcome.status, now, delay, self.message.id),
        )
        self._count("failed", None)

    def _finish(
        self, status: str, outcome: Outcome, sent_at: dt.datetime | None, took: float | None
    ) -> None:
        self.conn.execute(
            sql.SQL(
                "UPDATE {} SET status = %s, attempts = attempts + 1, last_error = %s,"
                " response_status = %s, sent_at = %s WHERE id = %s"
            ).format(self.t("alert_outbox")),
            (status, None if outcome.delivered else outcome.reason, outcome.status, sent_at,
             self.message.id),
        )  # fmt: skip
        self._count(status, took)

    def _count(self, outcome: str, took: float | None) -> None:
        stats, route = self.t("delivery_stats"), self.message.route
        self.conn.execute(
            sql.SQL("INSERT INTO {} (route) VALUES (%s) ON CONFLICT DO NOTHING").format(stats),
            (route,),
        )
        row = self.conn.execute(
            sql.SQL("SELECT duration_buckets FROM {} WHERE route = %s FOR UPDATE").format(stats),
            (route,),
        ).fetchone()
        buckets = add_to_buckets(row[0] if row else None, took)
        column = sql.Identifier(f"{outcome}_total")
        self.conn.execute(
            sql.SQL(
                "UPDATE {} SET {c} = {c} + 1, duration_buckets = %s,"
                " duration_sum = duration_sum + %s WHERE route = %s"
            ).format(stats, c=column),
            (buckets, took or 0.0, route),
        )


# Constant conditions, not parameters: "pending" is answered from the partial index of due
# messages, which a generic plan for "status = $1" could not use.
_PENDING, _DEAD = sql.SQL("status = 'pending'"), sql.SQL("status = 'dead'")


def _count(conn: psycopg.Connection[Any], t: StateTables, where: sql.SQL) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(t("alert_outbox"), where)
    ).fetchone()
    return int(row[0]) if row else 0


def read_delivery(conn: psycopg.Connection[Any], t: StateTables) -> DeliveryStats:
    """Every route's delivery counters and the outbox's counts, in the caller's snapshot."""
    routes = {
        values["route"]: RouteDelivery(**values)
        for values in stats_rows(conn, t("delivery_stats"), _DELIVERY)
    }
    return DeliveryStats(routes=routes, outbox_pending=_count(conn, t, _PENDING))
