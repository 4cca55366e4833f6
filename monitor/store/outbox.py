"""Alert outbox rows: enqueue, claim the next due one (or a route's due ones), mark; counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from alerts import Notification, Outcome, QueuedMessage

from .outbox_admin import UNDELIVERED, OutboxEntry, Retried, entries, retry_dead
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
    def claim_due(
        self, now: dt.datetime, skip_routes: Collection[str] = ()
    ) -> Iterator[Claim | None]:
        """The next due message of a route not in `skip_routes`, its row locked in a
        transaction that commits on exit."""
        with self.t.session("querying") as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                _DUE.format(o=self.t("alert_outbox"), route=sql.SQL("<> ALL(%s)")),
                (now, list(skip_routes), 1),
            )
            found = cur.fetchone()
            yield None if found is None else Claim(conn, self.t, QueuedMessage(*found))

    @contextmanager
    def claim_route_due(
        self, now: dt.datetime, route: str, limit: int
    ) -> Iterator[Batch | None]:
        """Up to `limit` due messages of `route` (a digest's), by the same rule as claim_due:
        only the oldest pending message of each alert. Locked in one transaction."""
        with self.t.session("querying") as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                _DUE.format(o=self.t("alert_outbox"), route=sql.SQL("= %s")), (now, route, limit)
            )
            found = [QueuedMessage(*row) for row in cur.fetchall()]
            yield Batch(conn, self.t, found) if found else None

    def entries(
        self, statuses: Sequence[str] = UNDELIVERED, route: str | None = None, limit: int = 50
    ) -> tuple[list[OutboxEntry], int]:
        """The newest messages in `statuses`, and how many there are (outbox_admin.entries)."""
        return entries(self.t, statuses, route, limit)

    def retry_dead(
        self, ids: Sequence[int] | None, route: str | None, now: dt.datetime, by: str
    ) -> Retried:
        """Queue dead messages again (outbox_admin.retry_dead)."""
        return retry_dead(self.t, ids, route, now, by)

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


# The oldest pending message of each alert only, so a resolved message never overtakes
# the firing one it answers.
_DUE = sql.SQL(
    "SELECT id, route, payload, attempts, created_at, last_error FROM {o} AS o"
    " WHERE status = 'pending' AND next_attempt_at <= %s AND route {route}"
    " AND NOT EXISTS (SELECT 1 FROM {o} AS p WHERE p.fingerprint = o.fingerprint"
    " AND p.status = 'pending' AND p.id < o.id)"
    " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED"
)


class Batch:
    """A digest's claimed messages (implements alerts.OutboxBatch): each mark applies to
    the messages named by `ids`, in the claim's one transaction."""

    def __init__(
        self, conn: psycopg.Connection[Any], t: StateTables, messages: Sequence[QueuedMessage]
    ) -> None:
        self.conn = conn
        self.t = t
        self._messages = tuple(messages)

    @property
    def messages(self) -> tuple[QueuedMessage, ...]:
        return self._messages

    def _claims(self, ids: Collection[int]) -> list[Claim]:
        return [Claim(self.conn, self.t, m) for m in self._messages if m.id in ids]

    def mark_sent(self, outcome: Outcome, now: dt.datetime, ids: Collection[int]) -> None:
        for claim in self._claims(ids):
            claim.mark_sent(outcome, now, (now - claim.message.created_at).total_seconds())

    def mark_retry(
        self, outcome: Outcome, now: dt.datetime, delay: float, ids: Collection[int]
    ) -> None:
        for claim in self._claims(ids):
            claim.mark_retry(outcome, claim.message.attempts + 1, now, delay)

    def mark_dead(self, outcome: Outcome, ids: Collection[int]) -> None:
        for claim in self._claims(ids):
            claim.mark_dead(outcome)


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
    return DeliveryStats(
        routes=routes, outbox_pending=_count(conn, t, _PENDING), outbox_dead=_count(conn, t, _DEAD)
    )
