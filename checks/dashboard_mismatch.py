"""dashboard_mismatch: progress and worker rows disagree on a run's failed or completed count.

This is the seed's "analytics says 3, the workers table says 2".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from config import CheckSettings

from .consistency import ConsistencyPart, Term, Terms, TermTables, terminal_signature
from .identifiers import table_ref
from .result import RunFindings, run_key, to_json_value

__all__ = ["CheckSettings", "DashboardMismatch"]


class DashboardMismatch(ConsistencyPart):
    prefix = "dm"
    key_fields = ("run_id",)
    default_description = (
        "Runs whose failed or completed partition count in partition_progress differs from "
        "the count of failed or completed worker_runs rows: the dashboard shows two numbers."
    )

    def aggregates(self) -> list[sql.Composable]:
        return [
            sql.SQL("count(*) FILTER (WHERE has_pp AND completed) AS {}").format(self.col("ppc")),
            sql.SQL("count(*) FILTER (WHERE has_pp AND failed) AS {}").format(self.col("ppf")),
            sql.SQL("sum(wc) AS {}").format(self.col("wrc")),
            sql.SQL("sum(wf) AS {}").format(self.col("wrf")),
        ]

    def condition(self) -> sql.Composable:
        return sql.SQL("({ppc} <> {wrc} OR {ppf} <> {wrf})").format(
            ppc=self.col("ppc"), wrc=self.col("wrc"), ppf=self.col("ppf"), wrf=self.col("wrf")
        )

    def screen_terms(self, t: TermTables) -> Terms:
        """Each run's completed and failed counts on both sides."""
        done, failed, status = t.pp.col("completed"), t.pp.col("failed"), t.wr.col("status")
        return Terms(
            progress=(
                Term("pc", sql.SQL("count(*) FILTER (WHERE {})").format(done)),
                Term("pf", sql.SQL("count(*) FILTER (WHERE {})").format(failed)),
            ),
            workers=(
                Term("wc", sql.SQL("count(*) FILTER (WHERE {} = %(completed_status)s)").format(
                    status)),
                Term("wf", sql.SQL("count(*) FILTER (WHERE {} = %(failed_status)s)").format(
                    status)),
            ),
            tests=(Term("counts", sql.SQL(
                "coalesce(p.pc, 0) <> coalesce(w.wc, 0) OR coalesce(p.pf, 0) <> coalesce(w.wf, 0)"
            )),),
        )  # fmt: skip

    def signature_terms(self, t: TermTables) -> Terms:
        # Terminal rows that match one to one have equal counts in every run.
        return terminal_signature(t)

    def reproduce_sql(self) -> str:
        pp, wr = (
            table_ref(self.env.tables, "partition_progress"),
            table_ref(self.env.tables, "worker_runs"),
        )
        names = self.env.tables.worker_runs
        return sql.SQL(
            "WITH p AS (SELECT {pr} AS run_id, count(*) FILTER (WHERE {pf}) AS pp_failed,"
            " count(*) FILTER (WHERE {pc}) AS pp_completed FROM {pp} GROUP BY 1),"
            " w AS (SELECT {wr_run} AS run_id,"
            " count(*) FILTER (WHERE {ws} = {failed}) AS wr_failed,"
            " count(*) FILTER (WHERE {ws} = {completed}) AS wr_completed FROM {wr} GROUP BY 1)"
            " SELECT run_id, coalesce(pp_failed, 0) AS pp_failed,"
            " coalesce(wr_failed, 0) AS wr_failed,"
            " coalesce(pp_completed, 0) AS pp_completed, coalesce(wr_completed, 0) AS wr_completed"
            " FROM p FULL JOIN w USING (run_id)"
            " WHERE coalesce(pp_failed, 0) <> coalesce(wr_failed, 0)"
            " OR coalesce(pp_completed, 0) <> coalesce(wr_completed, 0) ORDER BY run_id;"
        ).format(
            pr=pp.col("run_id"), pf=pp.col("failed"), pc=pp.col("completed"), pp=pp.ident,
            wr_run=wr.col("run_id"), ws=wr.col("status"), wr=wr.ident,
            failed=sql.Literal(names.failed_status), completed=sql.Literal(names.completed_status),
        ).as_string(None)  # fmt: skip

    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        ppc, wrc = int(row["dm_ppc"]), int(row["dm_wrc"] or 0)
        ppf, wrf = int(row["dm_ppf"]), int(row["dm_wrf"] or 0)
        if ppc == wrc and ppf == wrf:
            return None
        sample = {
            "run_id": to_json_value(row["run_id"]),
            "partition_progress_failed": ppf,
            "worker_runs_failed": wrf,
            "partition_progress_completed": ppc,
            "worker_runs_completed": wrc,
        }
        return RunFindings(run_key(row["run_id"]), 1, (sample,))
