"""The outbox by hand: list the messages not yet delivered, and send dead ones again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from config import ConfigError

from .tables import StateTables

# Statuses a person asks about: what waits, and what was given up.
UNDELIVERED = ("pending", "dead")


@dataclass(frozen=True)
class OutboxEntry:
    """One alert_outbox row as `dq-monitor alerts outbox` shows it."""

    id: int
    status: str
    route: str
    check: str
    kind: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    last_error: str | None
    response_status: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "route": self.route, "check": self.check,
            "kind": self.kind, "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error, "response_status": self.response_status,
        }  # fmt: skip


@dataclass(frozen=True)
class Retried:
    """What `alerts retry` did: the messages queued again, and the dead ones it left because
    a later message of the same alert and route was delivered or is queued (sending the older
    one now would tell the receiver a state that is over)."""

    queued: tuple[int, ...]
    superseded: tuple[tuple[int, int], ...]  # (dead message, the later one)


_COLUMNS = sql.SQL(
    "id, status, route, check_name, kind, attempts, created_at, next_attempt_at, last_error,"
    " response_status"
)


def entries(
    t: StateTables, statuses: Sequence[str], route: str | None, limit: int
) -> tuple[list[OutboxEntry], int]:
    """The newest `limit` messages in `statuses` (of `route`, if given), newest first, and
    how many match in all."""
    where = sql.SQL("status = ANY(%s) AND (%s::text IS NULL OR route = %s)")
    with t.session("reading the alert outbox") as conn:
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id DESC LIMIT %s").format(
                _COLUMNS, t("alert_outbox"), where
            ),
            (list(statuses), route, route, limit),
        ).fetchall()
        total = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(t("alert_outbox"), where),
            (list(statuses), route, route),
        ).fetchone()
    return [OutboxEntry(*row) for row in rows], int(total[0]) if total else 0


def retry_dead(
    t: StateTables, ids: Sequence[int] | None, route: str | None, now: dt.datetime, by: str
) -> Retried:
    """Queue dead messages again, due now: those of `ids`, or every dead one (of `route`).

    A retried message starts afresh (no attempts, its delivery age counted from now: it would
    otherwise die again at once past max_delivery_age); its last error says who retried it.
    Raises ConfigError, changing nothing, when an id is not a dead message.
    """
    o = t("alert_outbox")
    with t.session("retrying dead alert messages") as conn, conn.transaction():
        dead = _dead(conn, o, ids, route)
        if ids is not None:
            missing = sorted(set(ids) - set(dead))
            if missing:
                listed = ", ".join(str(i) for i in missing)
                raise ConfigError(
                    f"not a dead message: {listed}; `dq-monitor alerts outbox --dead` lists them"
                )
        later = dict(conn.execute(
            sql.SQL(
                "SELECT d.id, max(p.id) FROM {o} AS d JOIN {o} AS p ON p.fingerprint ="
                " d.fingerprint AND p.route = d.route AND p.id > d.id AND p.status IN"
                " ('sent', 'pending') WHERE d.id = ANY(%s) GROUP BY d.id"
            ).format(o=o),
            (dead,),
        ).fetchall())  # fmt: skip
        queue = [i for i in dead if i not in later]
        conn.execute(
            sql.SQL(
                "UPDATE {} SET status = 'pending', attempts = 0, created_at = %s,"
                " next_attempt_at = %s, response_status = NULL, last_error = 'retried by ' ||"
                " %s || ' after: ' || coalesce(last_error, 'no error recorded') WHERE id = ANY(%s)"
            ).format(o),
            (now, now, by, queue),
        )
    return Retried(tuple(queue), tuple(sorted(later.items())))


def _dead(
    conn: psycopg.Connection[Any], o: sql.Identifier, ids: Sequence[int] | None, route: str | None
) -> list[int]:
    rows = conn.execute(
        sql.SQL(
            "SELECT id FROM {} WHERE status = 'dead' AND (%s::bigint[] IS NULL OR id = ANY(%s))"
            " AND (%s::text IS NULL OR route = %s) ORDER BY id FOR UPDATE"
        ).format(o),
        (None if ids is None else list(ids), None if ids is None else list(ids), route, route),
    ).fetchall()
    return [int(row[0]) for row in rows]
