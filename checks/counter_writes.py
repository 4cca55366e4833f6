"""counter_writes: evidence that something still writes the deprecated run_metadata counters.

The check's memory is a ledger of the counters it saw: one key per run with non-zero values,
`[completed, failed]`. The first evaluation only records that baseline; afterwards any run
whose counters differ from the ledger (a run missing from it counts as 0, 0) is a violation,
and the ledger moves on (a run back at 0, 0 is forgotten).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql
from pydantic import Field

from config import CheckSettings, Duration

from .check import CheckEnv, SingleCheckProbe, Window
from .identifiers import table_ref
from .marker import statement_marker
from .result import (
    Evaluation,
    JsonValue,
    Memory,
    MemoryUpdate,
    Mode,
    RunFindings,
    run_key,
    to_json_value,
)
from .snapshot import Snapshot

__all__ = ["CounterWrites", "CounterWritesSettings"]


class CounterWritesSettings(CheckSettings):
    remember: Duration = Field(
        default=dt.timedelta(hours=24),
        description="How long a seen counter write stays a finding; one write fires one "
        "alert that resolves this long after the last write (0s: report each write once).",
    )


class CounterWrites(SingleCheckProbe):
    default_description = (
        "Runs whose deprecated run_metadata.completed_workers or failed_workers changed while "
        "the monitor watched: some code still writes the counters migration 005 drops."
    )
    incremental = False  # counter writes leave no timestamp, so every run is compared each time
    keeps_memory = True
    key_fields = ("run_id",)

    settings: CounterWritesSettings

    def __init__(self, name: str, settings: CounterWritesSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)
        self.rm = table_ref(env.tables, "run_metadata")

    def judge(self, snap: Snapshot, window: Window) -> Evaluation:
        ledger = window.memory.get(self.name)
        if ledger is None:
            rows = snap.fetch(self.baseline_sql())
            return Evaluation(
                mode=Mode.FULL,
                snapshot_at=snap.now,
                watermark=snap.now,
                findings=(),
                memory=ledger_update(rows, replace=True),
                note=f"baseline recorded: {len(rows)} runs with non-zero counters",
            )
        rows = snap.fetch(self.diff_sql(), ledger_arrays(ledger))
        findings = tuple(
            RunFindings(
                run_key(run),
                1,
                ({
                    "run_id": to_json_value(run),
                    "old_completed": old_c, "old_failed": old_f,
                    "new_completed": new_c, "new_failed": new_f,
                },),
            )
            for run, old_c, old_f, new_c, new_f in rows
        )  # fmt: skip
        # Newly seen writes replace a run's finding; older ones stay until `remember` ends.
        return Evaluation(
            mode=Mode.FULL,
            snapshot_at=snap.now,
            watermark=snap.now,
            findings=findings,
            judged=frozenset(f.run_key for f in findings),
            memory=ledger_update([(run, c, f) for run, _, _, c, f in rows], replace=False),
            expire_before=snap.now - self.settings.remember,
        )

    def reproduce_sql(self) -> str:
        rm = self.rm
        return (
            "-- Runs whose deprecated counters are non-zero now; the message shows which of\n"
            "-- them changed since the monitor's previous look (old and new values).\n"
            + sql.SQL(
                "SELECT {run}, {c}, {f} FROM {rm} WHERE coalesce({c}, 0) <> 0"
                " OR coalesce({f}, 0) <> 0 ORDER BY 1;"
            ).format(
                run=rm.col("run_id"), c=rm.col("completed_workers"),
                f=rm.col("failed_workers"), rm=rm.ident,
            ).as_string(None)
        )  # fmt: skip

    def baseline_sql(self) -> sql.Composed:
        rm = self.rm
        return sql.SQL(
            "SELECT {mark} {run}::text, {c}, {f} FROM {rm}"
            " WHERE coalesce({c}, 0) <> 0 OR coalesce({f}, 0) <> 0"
        ).format(
            mark=statement_marker(self.name), run=rm.col("run_id"), c=rm.col("completed_workers"),
            f=rm.col("failed_workers"), rm=rm.ident,
        )  # fmt: skip

    def diff_sql(self) -> sql.Composed:
        rm = self.rm
        return sql.SQL(
            "WITH {mark} prev AS ("
            " SELECT * FROM unnest(%(keys)s::text[], %(c)s::bigint[], %(f)s::bigint[])"
            " AS p(run_key, c, f))"
            " SELECT {run}, p.c, p.f, {c}, {f}"
            " FROM {rm} AS rm LEFT JOIN prev AS p ON p.run_key = {run}::text"
            " WHERE coalesce({c}, 0) <> coalesce(p.c, 0) OR coalesce({f}, 0) <> coalesce(p.f, 0)"
        ).format(
            mark=statement_marker(self.name),
            run=sql.SQL("rm.{}").format(rm.col("run_id")),
            c=sql.SQL("rm.{}").format(rm.col("completed_workers")),
            f=sql.SQL("rm.{}").format(rm.col("failed_workers")),
            rm=rm.ident,
        )  # fmt: skip


def ledger_update(rows: list[Any], *, replace: bool) -> MemoryUpdate:
    """The ledger's change from (run, completed, failed) rows: runs at 0, 0 are forgotten."""
    put: dict[str, JsonValue] = {}
    drop: set[str] = set()
    for run, completed, failed in rows:
        if (completed or 0, failed or 0) == (0, 0):
            drop.add(run_key(run))
        else:
            put[run_key(run)] = [completed, failed]
    return MemoryUpdate(put=put, drop=frozenset(drop), replace=replace)


def ledger_arrays(ledger: Memory) -> dict[str, list[Any]]:
    """The ledger as the parallel arrays diff_sql unnests."""
    keys: list[str] = []
    completed: list[JsonValue] = []
    failed: list[JsonValue] = []
    for key, value in ledger.entries.items():
        assert isinstance(value, list)
        keys.append(key)
        completed.append(value[0])
        failed.append(value[1])
    return {"keys": keys, "c": completed, "f": failed}
