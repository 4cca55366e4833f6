"""The check-run history the column-removal gate judges, as typed rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from monitor.store.tables import qualified

if TYPE_CHECKING:  # the row type stays importable without the store's dependencies
    from monitor.store.state_store import StateStore


@dataclass(frozen=True)
class RunRecord:
    """One row of check_runs, as the gate reads it."""

    id: int
    check: str
    finished_at: dt.datetime
    mode: str
    status: str
    violations: int | None = None
    samples: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    interval: dt.timedelta | None = None  # the schedule it ran on; None in older rows


class GateHistory:
    """Reads the recorded runs of the gating checks."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def runs(self, checks: Sequence[str], since: dt.datetime) -> dict[str, list[RunRecord]]:
        """Each named check's runs that finished at or after `since`, oldest first.

        Raises StoreError or StoreUnavailable.
        """
        with self.store.session("reading the gate's history") as conn:
            rows = conn.execute(
                sql.SQL(
                    # Most runs have no samples: an empty list is not parsed row by row.
                    "SELECT id, check_name, finished_at, mode, status, violations,"
                    " nullif(samples::text, '[]')::json, error, interval_seconds FROM {}"
                    " WHERE check_name = ANY(%s) AND finished_at >= %s ORDER BY id"
                ).format(qualified(self.store.schema, "check_runs")),
                (list(checks), since),
            ).fetchall()
        history: dict[str, list[RunRecord]] = {}
        for r in rows:
            interval = dt.timedelta(seconds=r[8]) if r[8] is not None else None
            record = RunRecord(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6] or ()), r[7],
                               interval=interval)  # fmt: skip
            history.setdefault(r[1], []).append(record)
        return history
