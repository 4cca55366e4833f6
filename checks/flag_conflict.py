"""flag_conflict: partitions whose completed and failed flags are both true."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from config import CheckSettings

from .consistency import ConsistencyPart, partition_aggregates, partition_findings
from .result import RunFindings

__all__ = ["CheckSettings", "FlagConflict"]


class FlagConflict(ConsistencyPart):
    prefix = "fc"
    default_description = (
        "Partitions marked both completed and failed in partition_progress: the source of "
        "truth contradicts itself."
    )

    def aggregates(self) -> list[sql.Composable]:
        return partition_aggregates(self, "has_pp AND completed AND failed")

    def condition(self) -> sql.Composable:
        return sql.SQL("{} > 0").format(self.col("n"))

    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        return partition_findings(row, self.prefix)
