"""Silences: a silenced check still runs and records but sends nothing; who and why are kept."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from config import ConfigError, Settings

from .rows import Silence
from .tables import StateTables

if TYPE_CHECKING:
    from .state_store import StateStore

__all__ = ["Silence", "SilenceRows", "Silences", "is_silenced"]


def is_silenced(
    conn: psycopg.Connection[Any], t: StateTables, check: str, now: dt.datetime
) -> bool:
    """Whether a silence covers `check` at `now`, on the caller's connection."""
    row = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE check_name = %s AND starts_at <= %s"
            " AND ends_at > %s AND removed_at IS NULL)"
        ).format(t("silences")),
        (check, now, now),
    ).fetchone()
    return bool(row and row[0])


class SilenceRows:
    """The silences table: insert, read and mark removed."""

    def __init__(self, tables: StateTables) -> None:
        self.t = tables

    def insert(
        self, check: str, starts_at: dt.datetime, ends_at: dt.datetime, by: str, reason: str
    ) -> int:
        """Store a new silence; returns its id."""
        with self.t.session("adding a silence") as conn:
            row = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (check_name, starts_at, ends_at, created_by, reason)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id"
                ).format(self.t("silences")),
                (check, starts_at, ends_at, by, reason),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def get(self, silence_id: int) -> Silence | None:
        found = self._select(sql.SQL("WHERE id = %s"), (silence_id,))
        return found[0] if found else None

    def active(self, now: dt.datetime) -> list[Silence]:
        """Silences neither removed nor ended at `now`, oldest first."""
        where = sql.SQL("WHERE removed_at IS NULL AND ends_at > %s ORDER BY id")
        return self._select(where, (now,))

    def every(self) -> list[Silence]:
        """All silences ever added, ended and removed ones too, oldest first."""
        return self._select(sql.SQL("ORDER BY id"), ())

    def between(self, start: dt.datetime, end: dt.datetime) -> list[Silence]:
        """Silences that overlapped [start, end]."""
        where = sql.SQL("WHERE starts_at < %s AND coalesce(removed_at, ends_at) > %s ORDER BY id")
        return self._select(where, (end, start))

    def mark_removed(self, silence_id: int, by: str, now: dt.datetime) -> None:
        with self.t.session("removing a silence") as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET removed_at = %s, removed_by = %s WHERE id = %s").format(
                    self.t("silences")
                ),
                (now, by, silence_id),
            )

    def _select(self, where: sql.SQL, params: tuple[Any, ...]) -> list[Silence]:
        with self.t.session("reading silences") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, check_name, starts_at, ends_at, created_by, reason, removed_at,"
                    " removed_by FROM {} "
                ).format(self.t("silences"))
                + where,
                params,
            ).fetchall()
        return [Silence(*row) for row in rows]


class Silences:
    """Add, list and remove silences, checking what the operator asked for."""

    def __init__(self, store: StateStore, settings: Settings) -> None:
        self.rows = store.silences
        self.settings = settings

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
        return self.get(self.rows.insert(check, now, now + duration, by, reason.strip()))

    def get(self, silence_id: int) -> Silence:
        found = self.rows.get(silence_id)
        if found is None:
            raise ConfigError(f"no silence with id {silence_id}; see `dq-monitor silence list`")
        return found

    def active(self, now: dt.datetime, *, include_ended: bool = False) -> list[Silence]:
        return self.rows.every() if include_ended else self.rows.active(now)

    def between(self, start: dt.datetime, end: dt.datetime) -> list[Silence]:
        """Silences that overlapped [start, end] (the migration gate lists them)."""
        return self.rows.between(start, end)

    def remove(self, silence_id: int, by: str, now: dt.datetime) -> Silence:
        silence = self.get(silence_id)
        if silence.removed_at is not None or silence.ends_at <= now:
            raise ConfigError(f"silence {silence_id} is not active any more")
        self.rows.mark_removed(silence_id, by, now)
        return self.get(silence_id)
