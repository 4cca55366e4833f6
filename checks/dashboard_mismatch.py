"""dashboard_mismatch: progress and worker rows disagree on a run's failed or completed count.

This is the seed's "analytics says 3, the workers table says 2".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from config import CheckSettings

from .consistency import ConsistencyPart
from .result import RunFindings, run_key, to_json_value

__all__ = ["CheckSettings", "DashboardMismatch"]


class DashboardMismatch(ConsistencyPart):
    prefix = "dm"
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
