"""The SQL of the consistency sweep: screen, signature, changed runs and the exact judgment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from .consistency_terms import (
    TermTables,
    aliased,
    leading,
    merge_terms,
    unique_named,
)
from .identifiers import TableRef
from .ranges import WHOLE, RunRange

if TYPE_CHECKING:
    from .consistency import ConsistencyPart


class ConsistencySql:
    """Builds the sweep's statements from the parts' declared terms (mixed into the probe)."""

    parts: tuple[ConsistencyPart, ...]
    pp: TableRef
    wr: TableRef

    def screen_sql(
        self, integer_ids: bool = False, *, focused: bool = False, bounds: RunRange = WHOLE
    ) -> sql.Composed:
        """Every run (or every run in %(runs)s, or in `bounds`) that is unsettled or may hold a
        violation, with its last change and whether it is a suspect.

        Per run and table, the aggregates the parts' screen terms declare (for the three
        built-ins: completed and failed counts, conflicting flags, and the sum of a 64-bit
        hash of the partition ids of terminal rows); a run is a suspect when any part's
        predicate holds, and every suspect gets the exact partition-level judgment. Grouping
        by run alone keeps the hash tables small, so both scans run in parallel workers.
        """
        pp, wr = self.pp, self.wr
        terms = merge_terms([part.screen_terms(self._tables(integer_ids)) for part in self.parts])
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
            p_terms=leading(terms.progress, reserved=("run_id", "pchg")),
            pp_filter=_run_filter(pp) if focused else bounds.where(pp.col("run_id")),
            wr=wr.ident, wr_run=wr.col("run_id"),
            start=wr.col("started_at"), fin=wr.col("finished_at"),
            w_terms=leading(terms.workers, reserved=("run_id", "wchg")),
            wr_filter=_run_filter(wr) if focused else bounds.where(wr.col("run_id")),
            suspect=suspect,
        )  # fmt: skip

    def signature_sql(
        self, integer_ids: bool = False, *, focused: bool, bounds: RunRange = WHOLE
    ) -> sql.Composed:
        """The whole database's signature difference, or the runs in %(runs)s's share of it
        (or the share of the runs in `bounds`: each number is a sum over runs, so the shares
        of ranges that cover every run add up to the whole).

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
        terms = merge_terms([t for t in declared if t is not None])
        sources = [
            sql.SQL("(SELECT {} FROM {}{}) AS {}").format(
                aliased(aggregates), table.ident,
                _run_filter(table) if focused else bounds.where(table.col("run_id")),
                sql.SQL(alias),
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
        flags = unique_named(f for part in self.parts for f in part.row_flags(tables))
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


def _run_filter(table: TableRef) -> sql.Composed:
    return sql.SQL(" WHERE {} = ANY(%(runs)s)").format(table.col("run_id"))
