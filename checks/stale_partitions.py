"""stale_partitions: partitions neither completed nor failed that have not changed for too long."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql
from pydantic import Field

from config import CheckSettings, PositiveDuration

from .check import CheckEnv, IndexSpec, SingleCheckProbe, Window
from .identifiers import table_ref
from .ranges import WHOLE, ProgressReport, RunRange, fetch_ranged, plan_ranges
from .result import Evaluation, Mode, RunFindings, Sample, run_key, to_json_value
from .snapshot import Snapshot

__all__ = ["StalePartitions", "StalePartitionsSettings"]


class StalePartitionsSettings(CheckSettings):
    threshold: PositiveDuration = Field(
        default=dt.timedelta(minutes=30),
        description="Age of `updated_at` that makes a pending partition stale.",
    )


class StalePartitions(SingleCheckProbe):
    default_description = (
        "Partitions neither completed nor failed whose updated_at is older than the threshold: "
        "a worker died or a message was lost."
    )

    settings: StalePartitionsSettings
    key_fields = ("run_id", "partition_id")

    def __init__(self, name: str, settings: StalePartitionsSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)
        self.pp = table_ref(env.tables, "partition_progress")
        self.rm = table_ref(env.tables, "run_metadata")

    def judge(self, snap: Snapshot, window: Window) -> Evaluation:
        threshold = self.settings.threshold
        stale_before = snap.now - threshold
        judged: frozenset[str] | None = None
        runs: list[Any] | None = None
        if window.mode is Mode.INCREMENTAL:
            assert window.since is not None
            # A partition's verdict changes when it changes (>= since) or when it crosses the
            # threshold without changing (updated_at >= since - threshold): both fall here.
            runs = [
                r for (r,) in snap.fetch(self.changed_sql(), {"since": window.since - threshold})
            ]
            judged = frozenset(run_key(r) for r in runs)
        params = {"before": stale_before, "limit": self.env.sample_limit, "runs": runs}
        findings = []
        for run, count, ids, stamps in self._stale_rows(snap, window, params):
            samples = tuple(
                self._sample(run, pid, stamp, snap.now)
                for pid, stamp in zip(ids, stamps, strict=True)
            )
            findings.append(RunFindings(run_key(run), int(count), samples))
        return Evaluation(
            mode=window.mode,
            snapshot_at=snap.now,
            watermark=snap.now,
            findings=tuple(findings),
            judged=judged,
        )

    def _stale_rows(
        self, snap: Snapshot, window: Window, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The stale partitions per run: of the given runs, or of every run range by range."""
        if params["runs"] is not None:
            runs = params["runs"]
            return snap.fetch(self.stale_sql(incremental=True), params) if runs else []
        ranges = plan_ranges(snap, self.rm, (self.pp,), self.env.chunk_rows)
        progress = ProgressReport(window.progress, self.label, len(ranges))
        return fetch_ranged(
            snap, ranges, lambda b: self.stale_sql(incremental=False, bounds=b), params, progress
        )

    @staticmethod
    def _sample(run: Any, pid: Any, stamp: dt.datetime, now: dt.datetime) -> Sample:
        return {
            "run_id": to_json_value(run),
            "partition_id": to_json_value(pid),
            "updated_at": stamp.isoformat(),
            "age_seconds": round((now - stamp).total_seconds(), 3),
        }

    def refresh_sample(self, sample: Sample, now: dt.datetime) -> Sample:
        stamp = sample.get("updated_at")
        if not isinstance(stamp, str):
            return sample
        age = (now - dt.datetime.fromisoformat(stamp)).total_seconds()
        return {**sample, "age_seconds": round(age, 3)}

    def changed_sql(self) -> sql.Composed:
        return sql.SQL("SELECT DISTINCT {run} FROM {pp} WHERE {upd} >= %(since)s").format(
            run=self.pp.col("run_id"), pp=self.pp.ident, upd=self.pp.col("updated_at")
        )

    def stale_sql(self, *, incremental: bool, bounds: RunRange = WHOLE) -> sql.Composed:
        pp = self.pp
        run_filter = sql.SQL(" AND {} = ANY(%(runs)s)").format(pp.col("run_id"))
        # `IS NOT TRUE` treats NULL as "not yet" as coalesce(flag, false) did, but the planner
        # estimates it from the column's statistics (about 1,200 pending rows, not 1.25 M of
        # 5 M), so it picks a parallel scan rather than a full walk of the primary-key index.
        return sql.SQL(
            "SELECT {run}, count(*),"
            " (array_agg({part} ORDER BY {part}))[1:%(limit)s],"
            " (array_agg({upd} ORDER BY {part}))[1:%(limit)s]"
            " FROM {pp}"
            " WHERE {done} IS NOT TRUE AND {failed} IS NOT TRUE"
            " AND {upd} < %(before)s{run_filter}"
            " GROUP BY {run}"
        ).format(
            run=pp.col("run_id"), part=pp.col("partition_id"), upd=pp.col("updated_at"),
            pp=pp.ident, done=pp.col("completed"), failed=pp.col("failed"),
            run_filter=run_filter if incremental else bounds.and_(pp.col("run_id")),
        )  # fmt: skip

    def reproduce_sql(self) -> str:
        pp = self.pp
        return sql.SQL(
            "SELECT {run}, {part}, {upd}, now() - {upd} AS age FROM {pp}"
            " WHERE {done} IS NOT TRUE AND {failed} IS NOT TRUE"
            " AND {upd} < now() - {threshold}::interval ORDER BY {upd};"
        ).format(
            run=pp.col("run_id"), part=pp.col("partition_id"), upd=pp.col("updated_at"),
            pp=pp.ident, done=pp.col("completed"), failed=pp.col("failed"),
            threshold=sql.Literal(f"{int(self.settings.threshold.total_seconds())} seconds"),
        ).as_string(None)  # fmt: skip

    def indexes(self) -> tuple[IndexSpec, ...]:
        return (
            IndexSpec("partition_progress", ("updated_at",), "find stale and changed partitions"),
            IndexSpec("partition_progress", ("run_id", "partition_id"), "judge one run"),
        )
