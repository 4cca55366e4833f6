"""Alert state rows, read and written inside the transaction that records a check run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from alerts import Alert, Kind, Notification, State

from . import outbox, silences
from .tables import StateTables


class AlertRows:
    """One transaction's alert rows (implements alerts.AlertRecords on its connection)."""

    def __init__(self, conn: psycopg.Connection[Any], tables: StateTables) -> None:
        self.conn = conn
        self.t = tables

    def silenced(self, check: str, now: dt.datetime) -> bool:
        return silences.is_silenced(self.conn, self.t, check, now)

    def enqueue(self, message: Notification, now: dt.datetime) -> None:
        outbox.enqueue(self.conn, self.t, message, now)

    def load(self, fingerprints: Sequence[str]) -> dict[str, Alert]:
        rows = self.conn.execute(
            sql.SQL(
                "SELECT fingerprint, check_name, route, state, failing_runs, active_since,"
                " last_sent_at, last_sent_kind, last_keys, last_violations FROM {}"
                " WHERE fingerprint = ANY(%s) FOR UPDATE"
            ).format(self.t("alert_state")),
            (list(fingerprints),),
        ).fetchall()
        return {
            r[0]: Alert(
                fingerprint=r[0],
                check=r[1],
                route=r[2],
                state=State(r[3]),
                failing_runs=r[4],
                active_since=r[5],
                last_sent_at=r[6],
                last_sent_kind=Kind(r[7]) if r[7] else None,
                last_keys=tuple(r[8]),
                last_violations=r[9],
            )
            for r in rows
        }

    def save(self, alert: Alert) -> None:
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (fingerprint, check_name, route, state, failing_runs,"
                " active_since, last_sent_at, last_sent_kind, last_keys, last_violations,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state,"
                " failing_runs = excluded.failing_runs, active_since = excluded.active_since,"
                " last_sent_at = excluded.last_sent_at, last_sent_kind = excluded.last_sent_kind,"
                " last_keys = excluded.last_keys, last_violations = excluded.last_violations,"
                " updated_at = now()"
            ).format(self.t("alert_state")),
            (alert.fingerprint, alert.check, alert.route, alert.state.value, alert.failing_runs,
             alert.active_since, alert.last_sent_at,
             alert.last_sent_kind.value if alert.last_sent_kind else None,
             Json(list(alert.last_keys)), alert.last_violations),
        )  # fmt: skip


class FiringAlertRows:
    """The firing alerts to re-send (implements alerts.FiringAlerts)."""

    def __init__(self, tables: StateTables) -> None:
        self.t = tables

    def to_resend(
        self, route: str, now: dt.datetime, sent_before: dt.datetime
    ) -> list[Notification]:
        """The latest message of each firing alert on `route` that was announced (its last
        message is a firing or reminder one), unless the alert has a message pending in the
        outbox (that one goes first, through the outbox), its last message was delivered at
        or after `sent_before` (it was just posted), or its check is silenced at `now`."""
        with self.t.session("reading the firing alerts to re-send") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT o.payload FROM {a} AS a CROSS JOIN LATERAL (SELECT kind, payload,"
                    " sent_at FROM {o} WHERE fingerprint = a.fingerprint ORDER BY id DESC"
                    " LIMIT 1) AS o WHERE a.route = %(route)s AND a.state = 'firing'"
                    " AND (o.sent_at IS NULL OR o.sent_at < %(sent_before)s)"
                    " AND a.last_sent_kind IN ('firing', 'reminder')"
                    " AND a.last_sent_at >= a.active_since AND o.kind IN ('firing', 'reminder')"
                    " AND NOT EXISTS (SELECT 1 FROM {o} AS p WHERE p.fingerprint = a.fingerprint"
                    " AND p.status = 'pending')"
                    " AND NOT EXISTS (SELECT 1 FROM {s} AS s WHERE s.check_name = a.check_name"
                    " AND s.starts_at <= %(now)s AND s.ends_at > %(now)s"
                    " AND s.removed_at IS NULL)"
                    " ORDER BY a.check_name"
                ).format(a=self.t("alert_state"), o=self.t("alert_outbox"), s=self.t("silences")),
                {"route": route, "now": now, "sent_before": sent_before},
            ).fetchall()
        return [Notification.from_json(row[0]) for row in rows]
