"""Alert state in the state store: advance each route's alert inside the check-run transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from alerts import Alert, Clock, Kind, Observation, State, advance, fingerprint
from checks import Check, CheckResult, Status
from config import Settings


class AlertBook:
    """Turns recorded check results into alert state changes and outbox messages.

    `apply` runs on the connection and inside the transaction that records the check run,
    so a message is queued exactly when the state change that caused it commits.
    """

    def __init__(self, settings: Settings, schema: str, clock: Clock) -> None:
        self.settings = settings
        self.schema = schema
        self.clock = clock

    def _t(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def apply(self, conn: psycopg.Connection[Any], check: Check, result: CheckResult) -> int:
        """Advance the check's alerts on every route that wants it; returns messages queued."""
        if result.status is Status.ERROR:
            return 0  # could not evaluate: neither failing nor clean (DqCheckErroring covers it)
        routes = [r for r in self.settings.alerts.routes if r.wants(check.name, check.severity)]
        if not routes:
            return 0
        now = self.clock.now()
        silenced = is_silenced(conn, self.schema, check.name, now)
        states = self._load(conn, [fingerprint(check.name, r.name) for r in routes])
        obs = Observation(
            check=check.name, run_id=result.run_id or 0, ok=result.status is Status.OK,
            severity=check.severity, violations=result.violations, samples=result.samples,
            key_fields=check.key_fields, description=check.description,
            reproduce_sql=check.reproduce_sql(), runbook_url=check.settings.runbook_url,
            at=result.finished_at,
        )  # fmt: skip
        queued = 0
        for route in routes:
            previous = states.get(fingerprint(check.name, route.name))
            alert, message = advance(
                previous, obs, route, self.settings.alerts, silenced=silenced, now=now
            )
            self._save(conn, alert)
            if message is not None:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (idempotency_key, fingerprint, check_name, route, kind,"
                        " payload, created_at, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s,"
                        " %s, %s) ON CONFLICT (idempotency_key) DO NOTHING"
                    ).format(self._t("alert_outbox")),
                    (message.idempotency_key, message.fingerprint, message.check, message.route,
                     message.kind.value, Json(message.to_json()), now, now),
                )  # fmt: skip
                queued += 1
        return queued

    def _load(self, conn: psycopg.Connection[Any], fingerprints: list[str]) -> dict[str, Alert]:
        rows = conn.execute(
            sql.SQL(
                "SELECT fingerprint, check_name, route, state, failing_runs, active_since,"
                " last_sent_at, last_sent_kind, last_keys, last_violations FROM {}"
                " WHERE fingerprint = ANY(%s) FOR UPDATE"
            ).format(self._t("alert_state")),
            (fingerprints,),
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

    def _save(self, conn: psycopg.Connection[Any], alert: Alert) -> None:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (fingerprint, check_name, route, state, failing_runs,"
                " active_since, last_sent_at, last_sent_kind, last_keys, last_violations,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state,"
                " failing_runs = excluded.failing_runs, active_since = excluded.active_since,"
                " last_sent_at = excluded.last_sent_at, last_sent_kind = excluded.last_sent_kind,"
                " last_keys = excluded.last_keys, last_violations = excluded.last_violations,"
                " updated_at = now()"
            ).format(self._t("alert_state")),
            (alert.fingerprint, alert.check, alert.route, alert.state.value, alert.failing_runs,
             alert.active_since, alert.last_sent_at,
             alert.last_sent_kind.value if alert.last_sent_kind else None,
             Json(list(alert.last_keys)), alert.last_violations),
        )  # fmt: skip


def is_silenced(conn: psycopg.Connection[Any], schema: str, check: str, now: dt.datetime) -> bool:
    row = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE check_name = %s AND starts_at <= %s"
            " AND ends_at > %s AND removed_at IS NULL)"
        ).format(sql.Identifier(schema, "silences")),
        (check, now, now),
    ).fetchone()
    return bool(row and row[0])
