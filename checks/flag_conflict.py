"""flag_conflict: partitions whose completed and failed flags are both true."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from config import CheckSettings

from .consistency import (
    ConsistencyPart,
    Term,
    Terms,
    TermTables,
    partition_aggregates,
    partition_findings,
)
from .identifiers import table_ref
from .result import RunFindings

__all__ = ["CheckSettings", "FlagConflict"]


class FlagConflict(ConsistencyPart):
    prefix = "fc"
    key_fields = ("run_id", "partition_id")
    default_description = (
        "Partitions marked both completed and failed in partition_progress: the source of "
        "truth contradicts itself."
    )

    def aggregates(self) -> list[sql.Composable]:
        return partition_aggregates(self, "has_pp AND completed AND failed")

    def condition(self) -> sql.Composable:
        return sql.SQL("{} > 0").format(self.col("n"))

    def screen_terms(self, t: TermTables) -> Terms:
        return Terms(
            progress=(Term("pboth", self._conflicts(t)),),
            tests=(Term("conflicts", sql.SQL("coalesce(p.pboth, 0) > 0")),),
        )

    def signature_terms(self, t: TermTables) -> Terms:
        return Terms(progress=(Term("n", self._conflicts(t)),), tests=(Term("n", sql.SQL("p.n")),))

    @staticmethod
    def _conflicts(t: TermTables) -> sql.Composed:
        return sql.SQL("count(*) FILTER (WHERE {} AND {})").format(
            t.pp.col("completed"), t.pp.col("failed")
        )

    def reproduce_sql(self) -> str:
        pp = table_ref(self.env.tables, "partition_progress")
        return (
            sql.SQL(
                "SELECT {run}, {part}, {upd} FROM {pp} WHERE {done} AND {failed} ORDER BY 1, 2;"
            )
            .format(
                run=pp.col("run_id"),
                part=pp.col("partition_id"),
                upd=pp.col("updated_at"),
                pp=pp.ident,
                done=pp.col("completed"),
                failed=pp.col("failed"),
            )
            .as_string(None)
        )

    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        return partition_findings(row, self.prefix)
