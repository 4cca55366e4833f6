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
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import sql

from .check import Check, CheckEnv, IndexSpec, Probe, Window
from .identifiers import TableRef, table_ref
from .result import Evaluation, Mode, RunFindings, run_key, to_json_value
from .snapshot import Snapshot

_NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FALSE = sql.SQL("false")


@dataclass(frozen=True)
class Term:
    """A named SQL expression; parts that declare the same name share one emitted copy."""

    name: str
    expr: sql.Composable


@dataclass(frozen=True)
class Terms:
    """What a part adds to the screen or the signature.

    `progress` and `workers` are aggregates over partition_progress and worker_runs rows,
    which become the columns of `p` and `w`; `tests` are expressions over those columns. In
    the screen, `p` and `w` hold one row per run (full joined, so either side may be NULL)
    and each test is a predicate, true for a suspect run. In the signature, `p` and `w` are
    one row each and each test is a number. Expressions may use the parameters
    %(completed_status)s and %(failed_status)s.
    """

    progress: tuple[Term, ...] = ()
    workers: tuple[Term, ...] = ()
    tests: tuple[Term, ...] = ()


@dataclass(frozen=True)
class RowFlag:
    """A condition on one row of either table that the exact sweep counts per partition, as
    column `name` of `j`, for parts whose judgment needs more than the flags and statuses."""

    name: str
    progress: sql.Composable = field(default_factory=lambda: _FALSE)
    workers: sql.Composable = field(default_factory=lambda: _FALSE)


@dataclass(frozen=True)
class TermTables:
    """The tables terms are written against, and how their ids hash."""

    pp: TableRef
    wr: TableRef
    #: Both partition_id columns are integers (hashed without a text cast).
    integer_ids: bool = False

    def id_hash(self, table: TableRef) -> sql.Composed:
        """A 64-bit hash of a row's partition id (equal in both tables for equal ids)."""
        return _id_hash(table.col("partition_id"), self.integer_ids)

    def row_hash(self, table: TableRef) -> sql.Composed:
        """A 64-bit hash of a row's (run id, partition id)."""
        return _row_hash(table.col("run_id"), table.col("partition_id"), self.integer_ids)


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


def terminal_signature(t: TermTables) -> Terms:
    """Failed and completed (run, partition) hash sums of progress minus those of worker rows:
    zero when every run's terminal partitions match its terminal worker rows one to one."""
    pp_hash, wr_hash = t.row_hash(t.pp), t.row_hash(t.wr)
    status = t.wr.col("status")
    return Terms(
        progress=(
            Term("f", sql.SQL("sum({}) FILTER (WHERE {})").format(pp_hash, t.pp.col("failed"))),
            Term("c", sql.SQL("sum({}) FILTER (WHERE {})").format(pp_hash, t.pp.col("completed"))),
        ),
        workers=(
            Term("f", sql.SQL("sum({}) FILTER (WHERE {} = %(failed_status)s)").format(
                wr_hash, status)),
            Term("c", sql.SQL("sum({}) FILTER (WHERE {} = %(completed_status)s)").format(
                wr_hash, status)),
        ),
        tests=(
            Term("failed", sql.SQL("coalesce(p.f, 0) - coalesce(w.f, 0)")),
            Term("completed", sql.SQL("coalesce(p.c, 0) - coalesce(w.c, 0)")),
        ),
    )  # fmt: skip


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


class ConsistencyProbe(Probe):
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
            verified, screen = None, "signature"
            if window.known is not None:
                verified = self._verify_known(snap, cutoff, window.known, integer_ids)
            if verified is None:
                verified, screen = self._screen_every_run(snap, cutoff, integer_ids), "per-run"
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
        self, snap: Snapshot, cutoff: dt.datetime, integer_ids: bool
    ) -> tuple[list[dict[str, Any]], frozenset[str]]:
        """Screen every run with per-run signatures, then judge the suspects exactly."""
        screened = snap.fetch(self.screen_sql(integer_ids), self._params(cutoff, None))
        unsettled = frozenset(run_key(r) for r, last, _ in screened if (last or _NEVER) > cutoff)
        suspects = [r for r, last, suspect in screened if suspect and (last or _NEVER) <= cutoff]
        return (self._sweep(snap, cutoff, suspects) if suspects else []), unsettled

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
        self, snap: Snapshot, cutoff: dt.datetime, known: frozenset[str], integer_ids: bool
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
        whole = snap.fetch(self.signature_sql(integer_ids, focused=False), params)[0]
        focus = known | unsettled
        share: tuple[Any, ...] = (0,) * len(whole)
        if focus:
            params["runs"] = array_literal(focus)
            try:
                with snap.cursor.connection.transaction():
                    share = snap.fetch(self.signature_sql(integer_ids, focused=True), params)[0]
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

    def screen_sql(self, integer_ids: bool = False, *, focused: bool = False) -> sql.Composed:
        """Every run (or every run in %(runs)s) that is unsettled or may hold a violation,
        with its last change and whether it is a suspect.

        Per run and table, the aggregates the parts' screen terms declare (for the three
        built-ins: completed and failed counts, conflicting flags, and the sum of a 64-bit
        hash of the partition ids of terminal rows); a run is a suspect when any part's
        predicate holds, and every suspect gets the exact partition-level judgment. Grouping
        by run alone keeps the hash tables small, so both scans run in parallel workers.
        """
        pp, wr = self.pp, self.wr
        terms = _merge([part.screen_terms(self._tables(integer_ids)) for part in self.parts])
        suspect = sql.SQL(" OR ").join(sql.SQL("({})").format(t.expr) for t in terms.tests)
        return sql.SQL(
            "WITH p AS ("
            " SELECT {pp_run} AS run_id, {p_terms}max({upd}) AS pchg"
            " FROM {pp}{pp_filter} GROUP BY 1"
            "), w AS ("
            " SELECT {wr_run} AS run_id, {w_terms}max(greatest({start}, {fin})) AS wchg"
            " FROM {wr}{wr_filter} GROUP BY 1"
            ")"
            " SELECT coalesce(p.run_id, w.run_id), greatest(p.pchg, w.wchg), {suspect}"
            " FROM p FULL JOIN w ON p.run_id = w.run_id"
            " WHERE greatest(p.pchg, w.wchg) > %(cutoff)s OR {suspect}"
        ).format(
            pp=pp.ident, pp_run=pp.col("run_id"), upd=pp.col("updated_at"),
            p_terms=_leading(terms.progress, reserved=("run_id", "pchg")),
            pp_filter=_run_filter(pp) if focused else sql.SQL(""),
            wr=wr.ident, wr_run=wr.col("run_id"),
            start=wr.col("started_at"), fin=wr.col("finished_at"),
            w_terms=_leading(terms.workers, reserved=("run_id", "wchg")),
            wr_filter=_run_filter(wr) if focused else sql.SQL(""),
            suspect=suspect,
        )  # fmt: skip

    def signature_sql(self, integer_ids: bool = False, *, focused: bool) -> sql.Composed:
        """The whole database's signature difference, or the runs in %(runs)s's share of it.

        The numbers the parts' signature terms declare, over one plain aggregate of each
        table. For the three built-ins: failed partitions' hash sum in partition_progress
        minus failed worker rows' hash sum in worker_runs, the same for completed, and the
        count of conflicting flags. The hash is of (run id, partition id), so all three are
        zero when every run's terminal partitions match its terminal worker rows one to one,
        and then no run violates any of the three checks. A plain aggregate needs no hash
        table per run, which makes it about half the cost of the per-run screen.
        """
        tables = self._tables(integer_ids)
        declared = [part.signature_terms(tables) for part in self.parts]
        if any(terms is None for terms in declared):
            raise ValueError("a part of this probe has no signature; screen every run instead")
        terms = _merge([t for t in declared if t is not None])
        sources = [
            sql.SQL("(SELECT {} FROM {}{}) AS {}").format(
                _aliased(aggregates), table.ident,
                _run_filter(table) if focused else sql.SQL(""), sql.SQL(alias),
            )
            for alias, table, aggregates in (("p", self.pp, terms.progress),
                                             ("w", self.wr, terms.workers))
            if aggregates
        ]  # fmt: skip
        numbers = sql.SQL(", ").join(t.expr for t in terms.tests)
        if not sources:
            return sql.SQL("SELECT {}").format(numbers)
        return sql.SQL("SELECT {} FROM {}").format(numbers, sql.SQL(", ").join(sources))

    def _tables(self, integer_ids: bool) -> TermTables:
        return TermTables(self.pp, self.wr, integer_ids)

    def changed_runs_sql(self) -> sql.Composed:
        """Runs with any row changed at or after %(since)s, with their last change."""
        pp, wr = self.pp, self.wr
        return sql.SQL(
            "SELECT run_id, max(t) FROM ("
            " SELECT {pp_run} AS run_id, {pp_upd} AS t FROM {pp} WHERE {pp_upd} >= %(since)s"
            " UNION ALL"
            " SELECT {wr_run}, greatest({wr_start}, {wr_fin}) FROM {wr}"
            " WHERE {wr_start} >= %(since)s OR {wr_fin} >= %(since)s"
            ") AS changed GROUP BY run_id"
        ).format(
            pp=pp.ident, pp_run=pp.col("run_id"), pp_upd=pp.col("updated_at"),
            wr=wr.ident, wr_run=wr.col("run_id"),
            wr_start=wr.col("started_at"), wr_fin=wr.col("finished_at"),
        )  # fmt: skip

    def sweep_sql(self) -> sql.Composed:
        """The exact judgment of the runs in %(runs)s: rows merged per partition, then per run.

        `u` is those runs' partition_progress and worker_runs rows in (run_id, partition_id)
        order; grouping it per partition gives `j`, one row per partition of either table
        (what a full join of progress rows with per-partition worker aggregates gives, since
        progress has one row per partition), and grouping `j` per run gives each part's
        columns. Only runs with a violation of some part come back.
        """
        pp, wr = self.pp, self.wr
        pp_filter, wr_filter = _run_filter(pp), _run_filter(wr)
        aggregates = sql.SQL(", ").join(a for part in self.parts for a in part.aggregates())
        conditions = sql.SQL(" OR ").join(part.condition() for part in self.parts)
        tables = self._tables(False)
        flags = _unique(f for part in self.parts for f in part.row_flags(tables))
        # Untyped NULLs take their type from the other branch of the UNION ALL.
        return sql.SQL(
            "WITH u AS ("
            " SELECT {pp_run} AS run_id, {pp_part} AS partition_id, true AS is_pp,"
            "  {pp_done} AS completed, {pp_failed} AS failed, NULL AS is_wc, NULL AS is_wf"
            "{pp_flags}"
            " FROM {pp}{pp_filter}"
            " UNION ALL"
            " SELECT {wr_run}, {wr_part}, false, NULL, NULL,"
            "  {wr_status} = %(completed_status)s, {wr_status} = %(failed_status)s{wr_flags}"
            " FROM {wr}{wr_filter}"
            " ORDER BY 1, 2"
            "), j AS ("
            " SELECT run_id, partition_id, bool_or(is_pp) AS has_pp, bool_or(NOT is_pp) AS has_wr,"
            "  coalesce(bool_or(completed), false) AS completed,"
            "  coalesce(bool_or(failed), false) AS failed,"
            "  count(*) FILTER (WHERE is_wc) AS wc, count(*) FILTER (WHERE is_wf) AS wf{j_flags}"
            " FROM u GROUP BY run_id, partition_id"
            "), r AS ("
            " SELECT run_id, {aggregates} FROM j GROUP BY run_id"
            ")"
            " SELECT * FROM r WHERE {conditions}"
        ).format(
            wr=wr.ident, wr_run=wr.col("run_id"), wr_part=wr.col("partition_id"),
            wr_status=wr.col("status"), wr_filter=wr_filter,
            pp=pp.ident, pp_run=pp.col("run_id"), pp_part=pp.col("partition_id"),
            pp_done=pp.col("completed"), pp_failed=pp.col("failed"), pp_filter=pp_filter,
            pp_flags=sql.SQL("").join(
                sql.SQL(", {} AS {}").format(f.progress, sql.Identifier(f.name)) for f in flags
            ),
            wr_flags=sql.SQL("").join(sql.SQL(", {}").format(f.workers) for f in flags),
            j_flags=sql.SQL("").join(
                sql.SQL(", count(*) FILTER (WHERE {0}) AS {0}").format(sql.Identifier(f.name))
                for f in flags
            ),
            aggregates=aggregates,
            conditions=conditions,
        )  # fmt: skip


def _merge(declared: Sequence[Terms]) -> Terms:
    """All the parts' terms, each name once per table (and once among the tests)."""
    return Terms(
        progress=_unique(t for terms in declared for t in terms.progress),
        workers=_unique(t for terms in declared for t in terms.workers),
        tests=_unique(t for terms in declared for t in terms.tests),
    )


_Named = TypeVar("_Named", Term, RowFlag)


def _unique(named: Iterable[_Named]) -> tuple[_Named, ...]:
    """Each name once, in order; a name declared twice must mean the same SQL."""
    seen: dict[str, _Named] = {}
    for item in named:
        if seen.setdefault(item.name, item) != item:
            raise ValueError(f"two consistency parts declare {item.name!r} differently")
    return tuple(seen.values())


def _aliased(terms: Sequence[Term]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(t.expr, sql.Identifier(t.name)) for t in terms
    )


def _leading(terms: Sequence[Term], reserved: Sequence[str]) -> sql.Composable:
    """Aliased terms followed by a comma (nothing when there are none)."""
    if clash := [t.name for t in terms if t.name in reserved]:
        raise ValueError(f"a consistency part's screen term may not be called {clash[0]!r}")
    return sql.SQL("{}, ").format(_aliased(terms)) if terms else sql.SQL("")


def _run_filter(table: TableRef) -> sql.Composed:
    return sql.SQL(" WHERE {} = ANY(%(runs)s)").format(table.col("run_id"))


def _row_hash(run: sql.Identifier, partition: sql.Identifier, integer: bool) -> sql.Composed:
    """A 64-bit hash of (run id, partition id): the partition id seeds the run id's hash."""
    seed = sql.SQL("{}::int8").format(partition) if integer else _id_hash(partition, False)
    return sql.SQL("hashtextextended({}::text, {})").format(run, seed)


def array_literal(keys: Iterable[str]) -> str:
    """A PostgreSQL array literal of run keys (sorted, so the query text is stable).

    Sent as an untyped parameter, `run_id = ANY(%s)` reads it as an array of the run id
    column's own type, so text keys of integer or uuid run ids still use the index.
    """
    quoted = ('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in sorted(keys))
    return "{" + ",".join(quoted) + "}"


def _id_hash(column: sql.Identifier, integer: bool) -> sql.Composed:
    """A 64-bit hash of a partition id; integers skip the text conversion."""
    if integer:
        return sql.SQL("hashint8extended({}::int8, 0)").format(column)
    return sql.SQL("hashtextextended({}::text, 0)").format(column)
