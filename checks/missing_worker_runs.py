"""missing_worker_runs: partitions completed or failed in partition_progress with no worker row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from config import CheckSettings

from .consistency import ConsistencyPart, partition_aggregates, partition_findings
from .identifiers import table_ref
from .result import RunFindings

__all__ = ["CheckSettings", "MissingWorkerRuns"]


class MissingWorkerRuns(ConsistencyPart):
    prefix = "mw"
    key_fields = ("run_id", "partition_id")
    default_description = (
        "Partitions marked completed or failed in partition_progress that have no worker_runs "
        "row at all: a retry deleted the row and the redelivered worker never recreated it."
    )

    _where = "has_pp AND (completed OR failed) AND NOT has_wr"

    def aggregates(self) -> list[sql.Composable]:
        return partition_aggregates(self, self._where)

    def condition(self) -> sql.Composable:
        return sql.SQL("{} > 0").format(self.col("n"))

    def reproduce_sql(self) -> str:
        pp, wr = (
            table_ref(self.env.tables, "partition_progress"),
            table_ref(self.env.tables, "worker_runs"),
        )
        return sql.SQL(
            "SELECT p.{pr}, p.{pp_part} FROM {pp} AS p WHERE (p.{pc} OR p.{pf})"
            " AND NOT EXISTS (SELECT 1 FROM {wr} AS w WHERE w.{wr_run} = p.{pr}"
            " AND w.{wr_part} = p.{pp_part}) ORDER BY 1, 2;"
        ).format(
            pr=pp.col("run_id"), pp_part=pp.col("partition_id"), pc=pp.col("completed"),
            pf=pp.col("failed"), pp=pp.ident, wr=wr.ident, wr_run=wr.col("run_id"),
            wr_part=wr.col("partition_id"),
        ).as_string(None)  # fmt: skip

    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        return partition_findings(row, self.prefix)
