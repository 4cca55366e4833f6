"""missing_worker_runs: partitions completed or failed in partition_progress with no worker row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from config import CheckSettings

from .consistency import ConsistencyPart, partition_aggregates, partition_findings
from .result import RunFindings

__all__ = ["CheckSettings", "MissingWorkerRuns"]


class MissingWorkerRuns(ConsistencyPart):
    prefix = "mw"
    default_description = (
        "Partitions marked completed or failed in partition_progress that have no worker_runs "
        "row at all: a retry deleted the row and the redelivered worker never recreated it."
    )

    _where = "has_pp AND (completed OR failed) AND NOT has_wr"

    def aggregates(self) -> list[sql.Composable]:
        return partition_aggregates(self, self._where)

    def condition(self) -> sql.Composable:
        return sql.SQL("{} > 0").format(self.col("n"))

    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        return partition_findings(row, self.prefix)
