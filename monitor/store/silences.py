"""Silences: a silenced check still runs and records but sends nothing; who and why are kept."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from config import ConfigError, Settings, format_duration
from monitor.store.state_store import StateStore


@dataclass(frozen=True)
class Silence:
    id: int
    check: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    created_by: str
    reason: str
    removed_at: dt.datetime | None
    removed_by: str | None

    def describe(self, now: dt.datetime) -> str:
        if self.removed_at is not None:
            state = f"removed by {self.removed_by} at {self.removed_at:%Y-%m-%d %H:%M} UTC"
        elif self.ends_at <= now:
            state = "expired"
        else:
            left = dt.timedelta(seconds=round((self.ends_at - now).total_seconds()))
            state = f"active, {format_duration(left)} left"
        return (
            f"#{self.id} {self.check}: {self.starts_at:%Y-%m-%d %H:%M} to "
            f"{self.ends_at:%Y-%m-%d %H:%M} UTC by {self.created_by} ({state}): {self.reason}"
        )


class Silences:
    """Add, list and remove silences in the state store."""

    def __init__(self, store: StateStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._t = sql.Identifier(store.schema, "silences")

    def add(
        self, check: str, duration: dt.timedelta, reason: str, by: str, now: dt.datetime
    ) -> Silence:
        """Silence `check` from now for `duration`. Raises ConfigError for bad input."""
        known = set(self.settings.checks.names())
        if check not in known:
            raise ConfigError(
                f"unknown check {check!r}; configured checks are: {', '.join(sorted(known))}"
            )
        if duration.total_seconds() <= 0:
            raise ConfigError("--for must be longer than 0s, e.g. --for 2h")
        if not reason.strip():
            raise ConfigError("--reason must say why the check is silenced")
        with self.store.session("adding a silence") as conn:
            row = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (check_name, starts_at, ends_at, created_by, reason)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id"
                ).format(self._t),
                (check, now, now + duration, by, reason.strip()),
            ).fetchone()
        assert row is not None
        return self.get(int(row[0]))

    def get(self, silence_id: int) -> Silence:
        found = self._select("WHERE id = %s", (silence_id,))
        if not found:
            raise ConfigError(f"no silence with id {silence_id}; see `dq-monitor silence list`")
        return found[0]

    def active(self, now: dt.datetime, *, include_ended: bool = False) -> list[Silence]:
        if include_ended:
            return self._select("ORDER BY id", ())
        return self._select("WHERE removed_at IS NULL AND ends_at > %s ORDER BY id", (now,))

    def between(self, start: dt.datetime, end: dt.datetime) -> list[Silence]:
        """Silences that overlapped [start, end] (the migration gate lists them)."""
        return self._select(
            "WHERE starts_at < %s AND coalesce(removed_at, ends_at) > %s ORDER BY id", (end, start)
        )

    def remove(self, silence_id: int, by: str, now: dt.datetime) -> Silence:
        silence = self.get(silence_id)
        if silence.removed_at is not None or silence.ends_at <= now:
            raise ConfigError(f"silence {silence_id} is not active any more")
        with self.store.session("removing a silence") as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET removed_at = %s, removed_by = %s WHERE id = %s").format(
                    self._t
                ),
                (now, by, silence_id),
            )
        return self.get(silence_id)

    def _select(self, where: str, params: tuple[Any, ...]) -> list[Silence]:
        with self.store.session("reading silences") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, check_name, starts_at, ends_at, created_by, reason, removed_at,"
                    " removed_by FROM {} "
                ).format(self._t)
                + sql.SQL(where),
                params,
            ).fetchall()
        return [Silence(*row) for row in rows]
