"""missing_worker_runs: partitions completed or failed in partition_progress with no worker row."""

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
    terminal_signature,
)
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

    def screen_terms(self, t: TermTables) -> Terms:
        """Each run's hash sum of terminal partition ids on both sides: a terminal partition
        without a worker row leaves them unequal."""
        pp_terminal = sql.SQL("{} OR {}").format(t.pp.col("completed"), t.pp.col("failed"))
        return Terms(
            progress=(Term("ph", sql.SQL("coalesce(sum({}) FILTER (WHERE {}), 0)").format(
                t.id_hash(t.pp), pp_terminal)),),
            workers=(Term("wh", sql.SQL(
                "coalesce(sum({}) FILTER (WHERE {} IN (%(completed_status)s, %(failed_status)s)),"
                " 0)").format(t.id_hash(t.wr), t.wr.col("status"))),),
            tests=(Term("hashes", sql.SQL("coalesce(p.ph, 0) <> coalesce(w.wh, 0)")),),
        )  # fmt: skip

    def signature_terms(self, t: TermTables) -> Terms:
        return terminal_signature(t)

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
