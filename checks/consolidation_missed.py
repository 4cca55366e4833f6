"""consolidation_missed: runs whose partitions all finished long ago, never consolidated."""

from __future__ import annotations

import datetime as dt

from psycopg import sql
from pydantic import Field

from config import CheckSettings, PositiveDuration, count

from .check import CheckEnv, IndexSpec, SingleCheckProbe, Window
from .identifiers import table_ref
from .result import Evaluation, MemoryUpdate, Mode, RunFindings, Sample, run_key, to_json_value
from .snapshot import Snapshot

__all__ = ["ConsolidationMissed", "ConsolidationMissedSettings"]


class ConsolidationMissedSettings(CheckSettings):
    threshold: PositiveDuration = Field(
        default=dt.timedelta(minutes=15),
        description="How long after its last partition finished a run may stay unconsolidated.",
    )


class ConsolidationMissed(SingleCheckProbe):
    """Every evaluation reads the runs not yet consolidated; an incremental one judges only
    those whose verdict could have changed.

    Only a run whose status is not terminal can be a violation, and a status change leaves no
    timestamp: so each evaluation reads run_metadata for the open runs, which also clears a
    finding the moment its run is consolidated. Most open runs are open because a partition
    is stuck, and reading their partitions every cycle grows with them. So the memory keeps
    the open runs judged "blocked" (a partition unfinished or none yet, the last change
    settled: no finding); an incremental evaluation skips a blocked run until a partition of
    it changes (the updated_at index), since until then it stays blocked. A skipped run holds
    no finding, so the evaluation still replaces every run's findings (`judged` None). A
    partition deleted without a change to the others is seen by the next full sweep, which
    judges every open run and writes the memory anew.
    """

    default_description = (
        "Runs whose partitions are all completed or failed, the last of them longer ago than "
        "the threshold, while run_metadata.status is not terminal: the run was never consolidated."
    )
    key_fields = ("run_id",)
    keeps_memory = True
    lazy_memory = True  # thousands of runs may be blocked; a cycle looks up the open ones

    settings: ConsolidationMissedSettings

    def __init__(self, name: str, settings: ConsolidationMissedSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)
        self.rm = table_ref(env.tables, "run_metadata")
        self.pp = table_ref(env.tables, "partition_progress")

    def judge(self, snap: Snapshot, window: Window) -> Evaluation:
        cutoff = snap.now - self.env.settle_time
        before = snap.now - self.settings.threshold
        terminal = list(self.env.tables.run_metadata.terminal_statuses)
        # Two steps: the planner cannot estimate how few runs are open, and a join would scan
        # every partition; an explicit list of runs goes through the (run_id, ...) index.
        open_runs = snap.fetch(self.open_runs_sql(), {"terminal": terminal})
        status = {run_key(run): state for run, state in open_runs}
        memory = window.memory.get(self.name)
        changed: frozenset[str] = frozenset()
        skipped: frozenset[str] = frozenset()
        if window.mode is Mode.INCREMENTAL and memory is not None:
            changed = frozenset(
                run_key(run) for (run,) in snap.fetch(self.changed_sql(), {"since": window.since})
            )
            skipped = frozenset(memory.get([k for k in status if k not in changed]))
        runs = [run for run, _ in open_runs if run_key(run) not in skipped]
        params = {"runs": runs, "cutoff": cutoff}
        rows = snap.fetch(self.partitions_sql(), params) if runs else []
        unsettled = frozenset(run_key(run) for run, _, last, _ in rows if last > cutoff)
        findings = tuple(
            RunFindings(run_key(run), 1, (self._sample(run, status[run_key(run)], count, last),))
            for run, count, last, finished in rows
            if finished and last < before and run_key(run) not in unsettled
        )
        # A judged run missing from `rows` has an unfinished partition and nothing settling.
        returned = {run_key(run) for run, _, _, _ in rows}
        blocked = {run_key(run) for run in runs} - returned
        if memory is None or window.mode is Mode.FULL:
            update = MemoryUpdate(
                put=dict.fromkeys(blocked, True),
                replace=True,
                summary_put={"blocked": len(blocked)},
            )
        else:
            # Only a changed run can have an entry that no longer holds (terminal ones too:
            # their partitions changed unseen and the entry would mislead if they reopened).
            update = MemoryUpdate(put=dict.fromkeys(blocked, True), drop=changed - blocked)
        note = f"{count(len(skipped), 'blocked run')} unchanged, not judged" if skipped else None
        return Evaluation(
            mode=window.mode,
            snapshot_at=snap.now,
            watermark=cutoff,
            findings=findings,
            unsettled=unsettled,
            memory=update,
            note=note,
        )

    @staticmethod
    def _sample(run: object, status: object, count: int, last: dt.datetime) -> Sample:
        return {
            "run_id": to_json_value(run),
            "status": to_json_value(status),
            "partitions": int(count),
            "finished_at": last.isoformat(),
        }

    def open_runs_sql(self) -> sql.Composed:
        """The runs whose status is not terminal, and their status (as text)."""
        rm = self.rm
        # status::text: the column may be an enum, and the values travel as text[].
        return sql.SQL(
            "SELECT {run}, {status}::text FROM {rm}"
            " WHERE ({status}::text = ANY(%(terminal)s::text[])) IS NOT TRUE"
        ).format(run=rm.col("run_id"), status=rm.col("status"), rm=rm.ident)

    def changed_sql(self) -> sql.Composed:
        """Each run with a partition changed since %(since)s (the updated_at index)."""
        pp = self.pp
        return sql.SQL("SELECT DISTINCT {run} FROM {pp} WHERE {upd} >= %(since)s").format(
            run=pp.col("run_id"), upd=pp.col("updated_at"), pp=pp.ident
        )

    def partitions_sql(self) -> sql.Composed:
        """Of the runs in %(runs)s, those finished or still settling: run id, partitions, last
        partition change, whether every partition finished."""
        pp = self.pp
        return sql.SQL(
            "SELECT {run}, count(*), max({upd}),"
            " bool_and(coalesce({done}, false) OR coalesce({failed}, false))"
            " FROM {pp} WHERE {run} = ANY(%(runs)s)"
            " GROUP BY 1"
            " HAVING bool_and(coalesce({done}, false) OR coalesce({failed}, false))"
            " OR max({upd}) > %(cutoff)s ORDER BY 1"
        ).format(
            run=pp.col("run_id"), upd=pp.col("updated_at"), done=pp.col("completed"),
            failed=pp.col("failed"), pp=pp.ident,
        )  # fmt: skip

    def reproduce_sql(self) -> str:
        rm, pp = self.rm, self.pp
        return sql.SQL(
            "SELECT rm.{run}, rm.{status}, count(*) AS partitions, max(pp.{upd}) AS finished_at"
            " FROM {rm} AS rm JOIN {pp} AS pp ON pp.{pp_run} = rm.{run}"
            " WHERE (rm.{status}::text = ANY({terminal}::text[])) IS NOT TRUE"
            " GROUP BY 1, 2"
            " HAVING bool_and(coalesce(pp.{done}, false) OR coalesce(pp.{failed}, false))"
            " AND max(pp.{upd}) < now() - {threshold}::interval ORDER BY 1;"
        ).format(
            run=rm.col("run_id"), status=rm.col("status"), rm=rm.ident, pp=pp.ident,
            pp_run=pp.col("run_id"), upd=pp.col("updated_at"), done=pp.col("completed"),
            failed=pp.col("failed"),
            terminal=sql.Literal(list(self.env.tables.run_metadata.terminal_statuses)),
            threshold=sql.Literal(f"{int(self.settings.threshold.total_seconds())} seconds"),
        ).as_string(None)  # fmt: skip

    def indexes(self) -> tuple[IndexSpec, ...]:
        return (
            IndexSpec(
                "partition_progress", ("updated_at",), "find runs changed since the last run"
            ),
            IndexSpec("partition_progress", ("run_id", "partition_id"), "judge one run"),
        )
