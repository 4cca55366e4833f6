"""premature_consolidation: runs with a terminal status while a partition is still pending."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from config import CriticalCheckSettings

from .check import CheckEnv, IndexSpec, SingleCheckProbe, Window
from .identifiers import table_ref
from .ranges import WHOLE, ProgressReport, RunRange, fetch_ranged, plan_ranges
from .result import Evaluation, Mode, RunFindings, run_key, to_json_value
from .snapshot import Snapshot

__all__ = ["PrematureConsolidation"]


class PrematureConsolidation(SingleCheckProbe):
    """Incremental runs judge the runs whose partitions changed since `since`.

    A status change leaves no timestamp, so a run consolidated with no partition change in
    the window is seen by the next full sweep. The worker consolidates right after it marks a
    partition, so the premature consolidations it makes fall in the window.
    """

    default_description = (
        "Runs whose run_metadata.status is terminal while at least one of their partitions is "
        "neither completed nor failed: the worker's partition count consolidated the run too early."
    )
    key_fields = ("run_id",)

    def __init__(self, name: str, settings: CriticalCheckSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)
        self.rm = table_ref(env.tables, "run_metadata")
        self.pp = table_ref(env.tables, "partition_progress")

    def judge(self, snap: Snapshot, window: Window) -> Evaluation:
        cutoff = snap.now - self.env.settle_time
        judged: frozenset[str] | None = None
        runs: list[Any] | None = None
        if window.mode is Mode.INCREMENTAL:
            assert window.since is not None
            changed = snap.fetch(self.changed_sql(), {"since": window.since})
            runs = [run for run, last in changed if last <= cutoff]
            judged = frozenset(run_key(r) for r in runs)
            unsettled = frozenset(run_key(r) for r, last in changed if last > cutoff)
        else:
            recent = snap.fetch(self.changed_sql(), {"since": cutoff})
            unsettled = frozenset(run_key(r) for r, last in recent if last > cutoff)
        params = {"terminal": list(self.env.tables.run_metadata.terminal_statuses), "runs": runs}
        rows = self._premature_rows(snap, window, params)
        findings = tuple(
            RunFindings(
                run_key(run),
                1,
                ({
                    "run_id": to_json_value(run),
                    "status": to_json_value(status),
                    "pending_partitions": int(pending),
                },),
            )
            for run, status, pending in rows
            if run_key(run) not in unsettled
        )  # fmt: skip
        return Evaluation(
            mode=window.mode,
            snapshot_at=snap.now,
            watermark=cutoff,
            findings=findings,
            judged=judged,
            unsettled=unsettled,
        )

    def _premature_rows(
        self, snap: Snapshot, window: Window, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Terminal runs with pending partitions: of the given runs, or of every run range by
        range (in run order, so the rows stay ordered)."""
        if params["runs"] is not None:
            runs = params["runs"]
            return snap.fetch(self.premature_sql(incremental=True), params) if runs else []
        ranges = plan_ranges(snap, self.rm, (self.pp,), self.env.chunk_rows)
        progress = ProgressReport(window.progress, self.label, len(ranges))
        def query(bounds: RunRange) -> sql.Composed:
            return self.premature_sql(incremental=False, bounds=bounds)

        return fetch_ranged(snap, ranges, query, params, progress)

    def changed_sql(self) -> sql.Composed:
        """Each run with a partition changed since %(since)s, and its last change."""
        pp = self.pp
        return sql.SQL(
            "SELECT {run}, max({upd}) FROM {pp} WHERE {upd} >= %(since)s GROUP BY 1"
        ).format(run=pp.col("run_id"), upd=pp.col("updated_at"), pp=pp.ident)

    def premature_sql(self, *, incremental: bool, bounds: RunRange = WHOLE) -> sql.Composed:
        rm, pp = self.rm, self.pp
        run_filter = sql.SQL(" AND rm.{} = ANY(%(runs)s)").format(rm.col("run_id"))
        if not incremental:
            # The planner carries equalities across the join, not ranges: bound both sides so
            # each range reads only its own slice of partition_progress.
            run_filter = sql.Composed([
                bounds.and_(sql.SQL("rm.{}").format(rm.col("run_id"))),
                bounds.and_(sql.SQL("pp.{}").format(pp.col("run_id"))),
            ])  # fmt: skip
        # status::text: the column may be an enum, and the values travel as text[].
        return sql.SQL(
            "SELECT rm.{run}, rm.{status}, count(*) FROM {rm} AS rm"
            " JOIN {pp} AS pp ON pp.{pp_run} = rm.{run}"
            " WHERE rm.{status}::text = ANY(%(terminal)s::text[])"
            " AND pp.{done} IS NOT TRUE AND pp.{failed} IS NOT TRUE{run_filter}"
            " GROUP BY rm.{run}, rm.{status} ORDER BY 1"
        ).format(
            run=rm.col("run_id"), status=rm.col("status"), rm=rm.ident, pp=pp.ident,
            pp_run=pp.col("run_id"), done=pp.col("completed"), failed=pp.col("failed"),
            run_filter=run_filter,
        )  # fmt: skip

    def reproduce_sql(self) -> str:
        rm, pp = self.rm, self.pp
        return sql.SQL(
            "SELECT rm.{run}, rm.{status}, count(*) AS pending_partitions FROM {rm} AS rm"
            " JOIN {pp} AS pp ON pp.{pp_run} = rm.{run}"
            " WHERE rm.{status}::text = ANY({terminal}::text[])"
            " AND pp.{done} IS NOT TRUE AND pp.{failed} IS NOT TRUE"
            " GROUP BY 1, 2 ORDER BY 1;"
        ).format(
            run=rm.col("run_id"), status=rm.col("status"), rm=rm.ident, pp=pp.ident,
            pp_run=pp.col("run_id"), done=pp.col("completed"), failed=pp.col("failed"),
            terminal=sql.Literal(list(self.env.tables.run_metadata.terminal_statuses)),
        ).as_string(None)  # fmt: skip

    def indexes(self) -> tuple[IndexSpec, ...]:
        return (
            IndexSpec(
                "partition_progress", ("updated_at",), "find runs changed since the last run"
            ),
            IndexSpec("partition_progress", ("run_id", "partition_id"), "judge one run"),
        )
