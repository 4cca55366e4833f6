"""Deliver the alert outbox: at least once, in order per alert, with backoff and pacing."""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
import psycopg
from psycopg import sql

from alerts import RETRY_AFTER_CAP, Clock, Notification, Outcome, deliver
from config import RouteSettings, RouteType, Settings, format_duration
from monitor.db import ConnectionSource
from monitor.store.state_store import add_to_buckets

log = logging.getLogger(__name__)

SLACK_MIN_GAP = 1.0  # Slack allows about one message per second per incoming webhook
BACKOFF_CAP = 300.0
_BACKOFF_DOUBLINGS = 16  # 2**16 s is past BACKOFF_CAP already; 2.0**1100 would overflow


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lines: list[str] = field(default_factory=list)


class OutboxSender:
    """Delivers due messages one at a time, each in its own transaction holding its row.

    A crash after sending but before the commit re-sends the message after restart: delivery
    is at least once, and every message carries an idempotency key for receivers to dedupe.
    """

    def __init__(
        self,
        source: ConnectionSource,
        schema: str,
        settings: Settings,
        clock: Clock,
        *,
        client: httpx.Client | None = None,
        console: TextIO | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.schema = schema
        self.settings = settings
        self.clock = clock
        self.client = client or httpx.Client(
            timeout=settings.alerts.request_timeout.total_seconds(), follow_redirects=False
        )
        self.console = console
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._last_post: dict[str, float] = {}

    def _t(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Deliver up to `limit` due messages. Raises StoreError/StoreUnavailable."""
        report = DeliveryReport()
        for _ in range(limit):
            with self.source.connection() as conn, conn.transaction():
                row = self._claim(conn)
                if row is None:
                    break
                self._attempt(conn, row, report)
        return report

    def _claim(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        # The oldest due message whose alert has no older message still pending, so a
        # resolved message never overtakes the firing one it answers.
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT id, route, payload, attempts, created_at, last_error FROM {o} AS o"
                    " WHERE status = 'pending' AND next_attempt_at <= %s"
                    " AND NOT EXISTS (SELECT 1 FROM {o} AS p WHERE p.fingerprint = o.fingerprint"
                    " AND p.status = 'pending' AND p.id < o.id)"
                    " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                ).format(o=self._t("alert_outbox")),
                (self.clock.now(),),
            )
            found = cur.fetchone()
            names = [d.name for d in cur.description or ()]
        return dict(zip(names, found, strict=True)) if found else None

    def _attempt(
        self, conn: psycopg.Connection[Any], row: dict[str, Any], report: DeliveryReport
    ) -> None:
        route = self.settings.alerts.route(row["route"])
        if route is None:
            gone = f"route {row['route']!r} is no longer configured"
            self._finish(conn, row, "dead", Outcome(False, permanent=True, reason=gone), report)
            return
        if self.clock.now() - row["created_at"] > self.settings.alerts.max_delivery_age:
            age = format_duration(self.settings.alerts.max_delivery_age)
            reason = f"undelivered for {age}; last error: {row['last_error']}"
            self._finish(conn, row, "dead", Outcome(False, permanent=True, reason=reason), report)
            return
        self._pace(route)
        outcome = deliver(
            route, Notification.from_json(row["payload"]), self.client,
            clock=self.clock, console=self.console,
        )  # fmt: skip
        if outcome.delivered:
            self._finish(conn, row, "sent", outcome, report)
        elif outcome.permanent:
            self._finish(conn, row, "dead", outcome, report)
        else:
            self._retry(conn, row, outcome, report)

    def _pace(self, route: RouteSettings) -> None:
        if route.type is not RouteType.SLACK:
            return
        now = self.clock.now().timestamp()
        last = self._last_post.get(route.name)
        if last is not None and now - last < SLACK_MIN_GAP:
            self.clock.sleep(SLACK_MIN_GAP - (now - last))
        self._last_post[route.name] = self.clock.now().timestamp()

    def backoff(self, attempts: int, outcome: Outcome) -> float:
        """Seconds before the next attempt: Retry-After when given (already at most
        RETRY_AFTER_CAP), else exponential with jitter, at most BACKOFF_CAP."""
        if outcome.retry_after is not None:
            return min(RETRY_AFTER_CAP, outcome.retry_after)
        exponential = 2.0 ** min(attempts, _BACKOFF_DOUBLINGS)
        return min(BACKOFF_CAP, exponential) * self.rng.uniform(0.5, 1.0)

    def _retry(self, conn: psycopg.Connection[Any], row: dict[str, Any], outcome: Outcome,
               report: DeliveryReport) -> None:  # fmt: skip
        attempts = row["attempts"] + 1
        delay = self.backoff(attempts, outcome)
        max_age = self.settings.alerts.max_delivery_age
        if self.clock.now() + dt.timedelta(seconds=delay) - row["created_at"] > max_age:
            # The attempt would come after the message is dead anyway; giving up now also
            # frees the alert's later messages (a resolved one waits behind this one).
            reason = (f"{outcome.reason}; the next attempt (in {delay:.0f}s) would pass "
                      f"max_delivery_age {format_duration(max_age)}")  # fmt: skip
            dead = Outcome(False, permanent=True, status=outcome.status, reason=reason)
            self._finish(conn, row, "dead", dead, report)
            return
        conn.execute(
            sql.SQL(
                "UPDATE {} SET attempts = %s, last_error = %s, response_status = %s,"
                " next_attempt_at = %s + make_interval(secs => %s) WHERE id = %s"
            ).format(self._t("alert_outbox")),
            (attempts, outcome.reason, outcome.status, self.clock.now(), delay, row["id"]),
        )
        self._count(conn, row["route"], "failed", None)
        report.retried += 1
        report.lines.append(f"route {row['route']}: {outcome.reason}; retrying in {delay:.1f}s")
        log.warning("alert to route %s: %s; retrying in %.1fs", row["route"], outcome.reason, delay)

    def _finish(self, conn: psycopg.Connection[Any], row: dict[str, Any], status: str,
                outcome: Outcome, report: DeliveryReport) -> None:  # fmt: skip
        now = self.clock.now()
        conn.execute(
            sql.SQL(
                "UPDATE {} SET status = %s, attempts = attempts + 1, last_error = %s,"
                " response_status = %s, sent_at = CASE WHEN %s = 'sent' THEN %s END WHERE id = %s"
            ).format(self._t("alert_outbox")),
            (status, None if outcome.delivered else outcome.reason, outcome.status, status, now,
             row["id"]),
        )  # fmt: skip
        took = (now - row["created_at"]).total_seconds() if status == "sent" else None
        self._count(conn, row["route"], status, took)
        if status == "sent":
            report.sent += 1
            report.lines.append(f"route {row['route']}: {outcome.describe()}")
        else:
            report.dead += 1
            report.lines.append(f"route {row['route']}: {outcome.reason}; marked dead")
            log.error(
                "alert to route %s: %s; marked dead, not retried", row["route"], outcome.reason
            )

    def _count(
        self, conn: psycopg.Connection[Any], route: str, outcome: str, took: float | None
    ) -> None:
        stats = self._t("delivery_stats")
        conn.execute(
            sql.SQL("INSERT INTO {} (route) VALUES (%s) ON CONFLICT DO NOTHING").format(stats),
            (route,),
        )
        row = conn.execute(
            sql.SQL("SELECT duration_buckets FROM {} WHERE route = %s FOR UPDATE").format(stats),
            (route,),
        ).fetchone()
        buckets = add_to_buckets(row[0] if row else None, took)
        column = sql.Identifier(f"{outcome}_total")
        conn.execute(
            sql.SQL(
                "UPDATE {} SET {c} = {c} + 1, duration_buckets = %s,"
                " duration_sum = duration_sum + %s WHERE route = %s"
            ).format(stats, c=column),
            (buckets, took or 0.0, route),
        )

    def close(self) -> None:
        self.client.close()
