"""The consistency sweep: one pass over partition_progress and worker_runs judges three checks.

Each part (dashboard_mismatch, missing_worker_runs, flag_conflict) contributes aggregate
columns to one set-based query, so a full sweep reads each table once instead of once per
check. A run is judged only when its last change is older than the settle time.

A part declares, besides its exact judgment (`aggregates`, `condition`, `findings`, and any
`row_flags` those read), the terms that let the probe skip clean runs: `screen_terms`, per-run
aggregates over each table and a "suspect" predicate that is true for every run with a
violation, and `signature_terms`, whole-database numbers that are all zero when no run has a
violation, or None when the part has none (the probe then screens every run). The probe emits
each named term once, however many parts declare it.
"""

from __future__ import annotations

import datetime as dt
import math
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from .check import Check, CheckEnv, IndexSpec, Probe, Window
from .consistency_sql import ConsistencySql
from .consistency_terms import (
    RowFlag,
    Term,
    Terms,
    TermTables,
    terminal_signature,
)
from .identifiers import table_ref
from .ranges import ProgressReport, RunRange, plan_ranges
from .result import Evaluation, Mode, RunFindings, run_key, to_json_value
from .snapshot import Snapshot

__all__ = [
    "ConsistencyPart",
    "ConsistencyProbe",
    "RowFlag",
    "Term",
    "TermTables",
    "Terms",
    "array_literal",
    "consistency_indexes",
    "partition_aggregates",
    "partition_findings",
    "terminal_signature",
]

_NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
class ConsistencyPart(Check):
    """A check judged inside the consistency sweep; it adds columns and reads them back."""

    #: Prefix of this part's columns in the sweep's result.
    prefix: ClassVar[str]

    @abstractmethod
    def aggregates(self) -> list[sql.Composable]:
        """Aggregate expressions over the joined rows `j`, each aliased with the prefix."""

    @abstractmethod
    def condition(self) -> sql.Composable:
        """True for a run (row of `r`) that has violations of this check."""

    @abstractmethod
    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        """This check's findings for one result row, or None when the run is clean."""

    @abstractmethod
    def screen_terms(self, t: TermTables) -> Terms:
        """Per-run aggregates and suspect predicates; every run with a violation must be a
        suspect (barring a hash collision), or full and incremental sweeps miss it."""

    @abstractmethod
    def signature_terms(self, t: TermTables) -> Terms | None:
        """Whole-database numbers that prove runs clean, or None when there are none.

        Each number must be a sum over runs (the probe subtracts the known runs' share),
        zero for a run without violations and not zero (barring a hash collision) for a
        set of runs with any.
        """

    def row_flags(self, t: TermTables) -> tuple[RowFlag, ...]:
        """The per-row conditions `aggregates` reads from `j`; most parts need none."""
        return ()

    def indexes(self) -> tuple[IndexSpec, ...]:
        return consistency_indexes()

    def col(self, suffix: str) -> sql.Identifier:
        return sql.Identifier(f"{self.prefix}_{suffix}")


def partition_aggregates(part: ConsistencyPart, where: str) -> list[sql.Composable]:
    """Count the matching partitions of a run and keep the first few ids, ordered."""
    return [
        sql.SQL("count(*) FILTER (WHERE {w}) AS {n}").format(w=sql.SQL(where), n=part.col("n")),
        sql.SQL("(array_agg(partition_id ORDER BY partition_id) FILTER (WHERE {w}))"
                "[1:%(limit)s] AS {s}").format(w=sql.SQL(where), s=part.col("ids")),
    ]  # fmt: skip


def partition_findings(row: Mapping[str, Any], prefix: str) -> RunFindings | None:
    """Findings keyed by run_id and partition_id from the columns partition_aggregates made."""
    count = int(row[f"{prefix}_n"])
    if count == 0:
        return None
    run = to_json_value(row["run_id"])
    samples = tuple(
        {"run_id": run, "partition_id": to_json_value(p)} for p in row[f"{prefix}_ids"] or ()
    )
    return RunFindings(run_key(row["run_id"]), count, samples)


def consistency_indexes() -> tuple[IndexSpec, ...]:
    return (
        IndexSpec("partition_progress", ("run_id", "partition_id"), "judge one run's partitions"),
        IndexSpec("partition_progress", ("updated_at",), "find runs changed since the last run"),
        IndexSpec("worker_runs", ("run_id", "partition_id"), "judge one run's worker rows"),
        IndexSpec("worker_runs", ("started_at",), "find runs changed since the last run"),
        IndexSpec("worker_runs", ("finished_at",), "find runs changed since the last run"),
    )


class ConsistencyProbe(ConsistencySql, Probe):
    """Evaluates any subset of the consistency parts in one snapshot and one query."""

    #: Up to this many known runs, a full sweep always tries the signature path.
    few_known: ClassVar[int] = 1000
    #: Beyond that, only while they are at most this share of all runs: reading many runs
    #: through the index costs more than screening every run in one sequential pass.
    known_share: ClassVar[float] = 0.2

    def __init__(
        self, parts: Sequence[ConsistencyPart], env: CheckEnv, related: Sequence[str] = ()
    ) -> None:
        if not parts:
            raise ValueError("a consistency probe needs at least one part")
        self.parts = tuple(parts)
        self.checks = self.parts
        # The signature needs to cover only this probe's parts, but another part's violations
        # spoil shared terms (a missing worker row moves the hash sums), so the runs where
        # the related checks found any belong with the known runs, even when those checks
        # run on another schedule (in another probe).
        self._related = tuple(dict.fromkeys((*self.names, *related)))
        self.env = env
        self.rm = table_ref(env.tables, "run_metadata")
        self.pp = table_ref(env.tables, "partition_progress")
        self.wr = table_ref(env.tables, "worker_runs")
        tables = TermTables(self.pp, self.wr)
        signatures = [part.signature_terms(tables) for part in self.parts]
        for part, signature in zip(self.parts, signatures, strict=True):
            if not all(t.tests for t in (part.screen_terms(tables), signature) if t is not None):
                raise ValueError(f"check {part.name!r} declares terms without a test")
        # Numbers that ignore one part's violations cannot prove a run clean of them.
        self.signed = all(signature is not None for signature in signatures)

    @property
    def related(self) -> tuple[str, ...]:
        return self._related

    @property
    def label(self) -> str:
        return "consistency sweep"

    def _evaluate(self, snap: Snapshot, window: Window) -> dict[str, Evaluation]:
        cutoff = snap.now - self.env.settle_time
        judged: frozenset[str] | None = None
        screen: str | None = None
        if window.mode is Mode.INCREMENTAL:
            assert window.since is not None
            changed = snap.fetch(self.changed_runs_sql(), {"since": window.since})
            settled = [run for run, last in changed if (last or _NEVER) <= cutoff]
            judged = frozenset(run_key(r) for r in settled)
            unsettled = frozenset(run_key(r) for r, last in changed if (last or _NEVER) > cutoff)
            rows = self._screen_runs(snap, cutoff, settled) if settled else []
        else:
            integer_ids = self._integer_partition_ids(snap)
            ranges = plan_ranges(snap, self.rm, (self.pp, self.wr), self.env.chunk_rows)
            progress = ProgressReport(window.progress, self.label, 0)
            verified, screen = None, "signature"
            if window.known is not None:
                verified = self._verify_known(
                    snap, cutoff, window.known, integer_ids, ranges=ranges, progress=progress
                )
            if verified is None:
                verified = self._screen_every_run(
                    snap, cutoff, integer_ids, ranges=ranges, progress=progress
                )
                screen = "per-run"
            rows, unsettled = verified
        results = {}
        for part in self.parts:
            found = tuple(f for f in (part.findings(row) for row in rows) if f is not None)
            results[part.name] = Evaluation(
                mode=window.mode,
                snapshot_at=snap.now,
                watermark=cutoff,
                findings=found,
                judged=judged,
                unsettled=unsettled,
                screen=screen,
            )
        return results

    def _screen_every_run(
        self,
        snap: Snapshot,
        cutoff: dt.datetime,
        integer_ids: bool,
        *,
        ranges: Sequence[RunRange],
        progress: ProgressReport,
    ) -> tuple[list[dict[str, Any]], frozenset[str]]:
        """Screen every run with per-run signatures, then judge the suspects exactly; range
        by range, so only one range's suspects are held at a time."""
        progress.extend(len(ranges))
        rows: list[dict[str, Any]] = []
        unsettled: set[str] = set()
        for bounds in ranges:
            params = self._params(cutoff, None) | bounds.params()
            screened = snap.fetch(self.screen_sql(integer_ids, bounds=bounds), params)
            unsettled.update(run_key(r) for r, last, _ in screened if (last or _NEVER) > cutoff)
            suspects = [
                r for r, last, suspect in screened if suspect and (last or _NEVER) <= cutoff
            ]
            del screened
            if suspects:
                rows.extend(self._sweep(snap, cutoff, suspects))
            progress.step()
        return rows, frozenset(unsettled)

    def _screen_runs(
        self, snap: Snapshot, cutoff: dt.datetime, runs: list[Any]
    ) -> list[dict[str, Any]]:
        """Judge the given (settled) runs: screen them per run, then judge the suspects."""
        integer_ids = self._integer_partition_ids(snap)
        params = self._params(cutoff, runs)
        screened = snap.fetch(self.screen_sql(integer_ids, focused=True), params)
        suspects = [r for r, _, suspect in screened if suspect]
        return self._sweep(snap, cutoff, suspects) if suspects else []

    def _verify_known(
        self,
        snap: Snapshot,
        cutoff: dt.datetime,
        known: frozenset[str],
        integer_ids: bool,
        *,
        ranges: Sequence[RunRange],
        progress: ProgressReport,
    ) -> tuple[list[dict[str, Any]], frozenset[str]] | None:
        """Judge the known runs exactly and prove all others clean, or None if that fails.

        One plain (ungrouped, parallel) aggregate over each table gives the signature
        difference of the whole database; the known and unsettled runs' share of it comes
        from an index lookup. When the rest is zero, no other run has a violation (barring a
        64-bit hash-sum collision). When it is not, something changed that no earlier run
        saw, and the caller screens every run. Also None when a known key does not parse as
        a run id (the run id column changed type), which the savepoint keeps harmless.
        """
        if not self.signed:
            return None
        if len(known) > self.few_known and len(known) > self.known_share * self._runs(snap):
            return None
        changed = snap.fetch(self.changed_runs_sql(), {"since": cutoff})
        unsettled = frozenset(run_key(r) for r, last in changed if (last or _NEVER) > cutoff)
        params = self._params(cutoff, None)
        progress.extend(len(ranges))
        whole: tuple[Any, ...] = ()
        for bounds in ranges:
            query = self.signature_sql(integer_ids, focused=False, bounds=bounds)
            numbers = _exact(snap.fetch(query, params | bounds.params())[0])
            whole = tuple(map(sum, zip(whole, numbers, strict=True))) if whole else numbers
            progress.step()
        focus = known | unsettled
        share: tuple[Any, ...] = (0,) * len(whole)
        if focus:
            params["runs"] = array_literal(focus)
            try:
                with snap.cursor.connection.transaction():
                    query = self.signature_sql(integer_ids, focused=True)
                    share = _exact(snap.fetch(query, params)[0])
            except psycopg.errors.DataError:
                return None
        if any(w != s for w, s in zip(whole, share, strict=True)):
            return None
        judge = known - unsettled
        rows = self._sweep(snap, cutoff, array_literal(judge)) if judge else []
        return rows, unsettled

    def _sweep(
        self, snap: Snapshot, cutoff: dt.datetime, runs: list[Any] | str
    ) -> list[dict[str, Any]]:
        """The exact judgment of runs given as values or as an array literal (whose element
        type the server takes from the run id column)."""
        params = self._params(cutoff, runs)
        snap.cursor.execute(self.sweep_sql(), params)
        names = [d.name for d in snap.cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in snap.cursor.fetchall()]

    def _params(self, cutoff: dt.datetime, runs: list[Any] | str | None) -> dict[str, Any]:
        return {
            "cutoff": cutoff,
            "limit": self.env.sample_limit,
            "completed_status": self.env.tables.worker_runs.completed_status,
            "failed_status": self.env.tables.worker_runs.failed_status,
            "runs": runs,
        }

    def _runs(self, snap: Snapshot) -> float:
        """The planner's estimate of the number of runs; infinite while it has none."""
        rows = snap.fetch(
            sql.SQL("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(rm)s)"),
            {"rm": self.rm.ident.as_string(None)},
        )
        return float(rows[0][0]) if rows and rows[0][0] > 0 else math.inf

    def _integer_partition_ids(self, snap: Snapshot) -> bool:
        """Whether both partition_id columns are integers (hashed without a text cast)."""
        rows = snap.fetch(
            sql.SQL(
                "SELECT count(*) FROM pg_attribute WHERE NOT attisdropped"
                " AND ((attrelid = to_regclass(%(pp)s) AND attname = %(pp_col)s)"
                "  OR (attrelid = to_regclass(%(wr)s) AND attname = %(wr_col)s))"
                " AND atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)"
            ),
            {"pp": self.pp.ident.as_string(None), "pp_col": self.pp.columns["partition_id"],
             "wr": self.wr.ident.as_string(None), "wr_col": self.wr.columns["partition_id"]},
        )  # fmt: skip
        return bool(rows and rows[0][0] == 2)

def _exact(numbers: Sequence[Any]) -> tuple[Any, ...]:
    """Whole numerics as Python ints: summing them over ranges as Decimals would round past
    28 digits, which sums of 64-bit hashes over many rows reach."""
    return tuple(
        int(n) if isinstance(n, Decimal) and n == n.to_integral_value() else n for n in numbers
    )


def array_literal(keys: Iterable[str]) -> str:
    """A PostgreSQL array literal of run keys (sorted, so the query text is stable).

    Sent as an untyped parameter, `run_id = ANY(%s)` reads it as an array of the run id
    column's own type, so text keys of integer or uuid run ids still use the index.
    """
    quoted = ('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in sorted(keys))
    return "{" + ",".join(quoted) + "}"


