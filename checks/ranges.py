"""Ranges of run ids that split a full sweep into bounded statements inside one snapshot."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from .identifiers import TableRef
from .snapshot import Snapshot

__all__ = [
    "MAX_RANGES",
    "SAMPLE_RUNS",
    "Progress",
    "ProgressReport",
    "RunRange",
    "fetch_ranged",
    "plan_ranges",
]

#: Called after each range of a sweep with (check or probe name, ranges done, ranges total).
Progress = Callable[[str, int, int], None]

#: However small the chunk size, a sweep is split into at most this many statements: beyond
#: that the per-statement overhead outweighs the scan, and the bounds array stays small.
MAX_RANGES = 10_000

#: Runs of run_metadata the bounds are chosen from: beyond this many, a block sample of about
#: this size, so choosing the bounds costs the same at any size (any bounds give the same
#: findings; the sample only makes the ranges a little less even).
SAMPLE_RUNS = 200_000

# Bytes per row assumed while a table has never been analysed (reltuples -1): about the
# width of a partition_progress row with its tuple header, so the guess errs on more ranges.
_BYTES_PER_ROW = 64


@dataclass(frozen=True)
class RunRange:
    """The runs with lo <= run_id < hi; an end that is None is open.

    The first range has no lower end and the last no upper end, so the ranges cover every run
    id, including runs that have rows in one table and none in run_metadata.
    """

    lo: Any = None
    hi: Any = None

    @property
    def whole(self) -> bool:
        return self.lo is None and self.hi is None

    def condition(self, column: sql.Composable) -> sql.Composable | None:
        """`column` within this range, or None when the range is every run."""
        parts = []
        if self.lo is not None:
            parts.append(sql.SQL("{} >= %(range_lo)s").format(column))
        if self.hi is not None:
            parts.append(sql.SQL("{} < %(range_hi)s").format(column))
        return sql.SQL(" AND ").join(parts) if parts else None

    def where(self, column: sql.Composable) -> sql.Composable:
        """` WHERE <condition>`, or nothing for the whole range."""
        cond = self.condition(column)
        return sql.SQL(" WHERE {}").format(cond) if cond is not None else sql.SQL("")

    def and_(self, column: sql.Composable) -> sql.Composable:
        """` AND <condition>`, or nothing for the whole range."""
        cond = self.condition(column)
        return sql.SQL(" AND {}").format(cond) if cond is not None else sql.SQL("")

    def params(self) -> dict[str, Any]:
        # Bound values come back as the run id column's own Python type (int, UUID, str), so
        # the comparison uses the column's type, collation and index.
        return {"range_lo": self.lo, "range_hi": self.hi}


WHOLE = RunRange()


def plan_ranges(
    snap: Snapshot,
    runs: TableRef,
    tables: Sequence[TableRef],
    chunk_rows: int,
    *,
    sample_runs: int = SAMPLE_RUNS,
) -> list[RunRange]:
    """Ranges of runs holding about `chunk_rows` rows of the largest of `tables` each.

    The row count is the planner's estimate (pg_class.reltuples); up to 1.5 x `chunk_rows` the
    sweep stays one statement over the whole tables, with the plan it always had. Beyond it,
    the bounds are run ids of `runs` (run_metadata) at even quantiles, read in the snapshot
    (from a repeatable block sample when it holds more than `sample_runs`), so each range
    holds about as many runs; rows per run are assumed even.
    """
    estimate = _estimate_rows(snap, tables)
    # Rounded, not ceiled: a table just past chunk_rows (an estimate a little high, or
    # worker_runs a little larger than partition_progress) keeps its one parallel plan,
    # which is 2-3x faster than ranges read through the indexes.
    count = min(MAX_RANGES, math.floor(estimate / chunk_rows + 0.5)) if estimate > 0 else 1
    if count <= 1:
        return [WHOLE]
    fractions = [i / count for i in range(1, count)]
    known_runs = _estimate_rows(snap, (runs,))
    sampled = known_runs > sample_runs
    sample = sql.SQL(" TABLESAMPLE SYSTEM (%(percent)s::float4) REPEATABLE (0)")
    rows = snap.fetch(
        sql.SQL(
            "SELECT percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY {run})"
            " FROM {rm}{sample}"
        ).format(run=runs.col("run_id"), rm=runs.ident, sample=sample if sampled else sql.SQL("")),
        {"fractions": fractions, "percent": 100.0 * sample_runs / known_runs if sampled else None},
    )
    bounds = list(dict.fromkeys(b for b in (rows[0][0] or ()) if b is not None))
    if not bounds:
        return [WHOLE]
    edges: list[Any] = [None, *bounds, None]
    return [RunRange(lo, hi) for lo, hi in itertools.pairwise(edges)]


def _estimate_rows(snap: Snapshot, tables: Sequence[TableRef]) -> float:
    names = [t.ident.as_string(None) for t in tables]
    rows = snap.fetch(
        sql.SQL(
            "SELECT max(CASE WHEN reltuples >= 0 THEN reltuples"
            " ELSE pg_relation_size(oid) / %(width)s END)"
            " FROM pg_class"
            " WHERE oid = ANY(ARRAY(SELECT to_regclass(n) FROM unnest(%(names)s::text[]) AS n))"
        ),
        {"names": names, "width": float(_BYTES_PER_ROW)},
    )
    return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0


class ProgressReport:
    """Counts a sweep's ranges for its Progress callback (which may be None)."""

    def __init__(self, report: Progress | None, name: str, total: int) -> None:
        self.report = report
        self.name = name
        self.done = 0
        self.total = total
        self._send()

    def step(self) -> None:
        self.done += 1
        self._send()

    def extend(self, more: int) -> None:
        """More ranges to go (a sweep that falls back to another path): the count goes on."""
        self.total += more
        self._send()

    def _send(self) -> None:
        # A sweep not started yet (no ranges planned) reports nothing.
        if self.report is not None and self.total > 0:
            self.report(self.name, self.done, self.total)


def fetch_ranged(
    snap: Snapshot,
    ranges: Sequence[RunRange],
    query: Callable[[RunRange], sql.Composed],
    params: dict[str, Any],
    progress: ProgressReport,
) -> list[tuple[Any, ...]]:
    """Every range's rows, in range order (so rows ordered by run stay ordered), one
    statement per range, reporting progress after each."""
    rows: list[tuple[Any, ...]] = []
    for bounds in ranges:
        rows.extend(snap.fetch(query(bounds), params | bounds.params()))
        progress.step()
    return rows
