"""counter_writes: evidence that something still writes the deprecated run_metadata counters.

The check's memory is a ledger of the counters it saw: one key per run with non-zero values,
`[completed, failed]`. The first evaluation only records that baseline; afterwards any run
whose counters differ from the ledger (a run missing from it counts as 0, 0) is a violation,
and the ledger moves on (a run back at 0, 0 is forgotten).

Beside the ledger, the memory's summary keeps a signature of the runs with non-zero counters
(count and hash sums of (run, counters)), whole and per bucket of runs. A cycle computes the
whole signature (one plain aggregate); only when it differs does it compare the buckets and
read the runs of the buckets that differ, looking up just their ledger entries. So a quiet
cycle costs one scan of run_metadata and no ledger at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from psycopg import sql
from pydantic import Field

from config import CheckSettings, Duration, count

from .check import CheckEnv, SingleCheckProbe, Window
from .identifiers import table_ref
from .marker import statement_marker
from .result import (
    Evaluation,
    JsonValue,
    MemoryUpdate,
    Mode,
    RunFindings,
    run_key,
    to_json_value,
)
from .snapshot import Snapshot

__all__ = ["CounterWrites", "CounterWritesSettings"]

#: Runs are signed in this many buckets (by a hash of the run id): a write costs reading the
#: runs of its bucket only, a few hundred at a million runs.
BUCKETS = 1024
TOTAL = "total"  # the summary's key for the whole signature; the buckets' keys are numbers


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
    incremental = False  # counter writes leave no timestamp, so every run is signed each time
    keeps_memory = True
    lazy_memory = True
    key_fields = ("run_id",)

    settings: CounterWritesSettings

    def __init__(self, name: str, settings: CounterWritesSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)
        self.rm = table_ref(env.tables, "run_metadata")

    def judge(self, snap: Snapshot, window: Window) -> Evaluation:
        ledger = window.memory.get(self.name)
        if ledger is None:
            rows = snap.fetch(self.baseline_sql())
            update = ledger_update(rows, replace=True)
            return Evaluation(
                mode=Mode.FULL,
                snapshot_at=snap.now,
                watermark=snap.now,
                findings=(),
                memory=merge(update, self.signature(snap, {})),
                note=f"baseline recorded: {count(len(rows), 'run')} with non-zero counters",
            )
        stored = ledger.summary
        if TOTAL not in stored:
            # A ledger kept before the signatures: compared whole once, then signed.
            rows = snap.fetch(self.diff_sql(), ledger_arrays(ledger.get()))
            changes = [(run, old_c, old_f, c, f) for run, old_c, old_f, c, f in rows]
            update = ledger_update([(run, c, f) for run, _, _, c, f in changes], replace=False)
            return self._evaluation(snap, changes, merge(update, self.signature(snap, stored)))
        (total,) = snap.fetch(self.total_sql())
        if list(total) == stored[TOTAL]:
            return self._evaluation(snap, [], None)
        now = {str(b): [n, s1, s2] for b, n, s1, s2 in snap.fetch(self.buckets_sql())}
        differ = {k for k in now.keys() | stored.keys() - {TOTAL} if now.get(k) != stored.get(k)}
        rows = snap.fetch(self.bucket_rows_sql(), {"buckets": sorted(int(k) for k in differ)})
        known = ledger.get([key for _, key, _, _ in rows])
        changes = []
        for run, key, c, f in rows:
            old = known.get(key)
            old_c, old_f = old if isinstance(old, list) else (None, None)
            if ((c or 0), (f or 0)) != ((old_c or 0), (old_f or 0)):
                changes.append((run, old_c, old_f, c, f))
        update = ledger_update([(run, c, f) for run, _, _, c, f in changes], replace=False)
        signature = MemoryUpdate(
            summary_put={TOTAL: list(total), **{k: now[k] for k in differ if k in now}},
            summary_drop=frozenset(k for k in differ if k not in now),
        )
        return self._evaluation(snap, changes, merge(update, signature))

    def _evaluation(
        self, snap: Snapshot, changes: list[Any], memory: MemoryUpdate | None
    ) -> Evaluation:
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
            for run, old_c, old_f, new_c, new_f in changes
        )  # fmt: skip
        # Newly seen writes replace a run's finding; older ones stay until `remember` ends.
        return Evaluation(
            mode=Mode.FULL,
            snapshot_at=snap.now,
            watermark=snap.now,
            findings=findings,
            judged=frozenset(f.run_key for f in findings),
            memory=memory,
            expire_before=snap.now - self.settings.remember,
        )

    def signature(self, snap: Snapshot, stored: Mapping[str, JsonValue]) -> MemoryUpdate:
        """The whole signature, as a change to the `stored` one (empty buckets forgotten)."""
        (total,) = snap.fetch(self.total_sql())
        now: dict[str, JsonValue] = {
            str(b): [n, s1, s2] for b, n, s1, s2 in snap.fetch(self.buckets_sql())
        }
        now[TOTAL] = list(total)
        return MemoryUpdate(summary_put=now, summary_drop=frozenset(stored.keys() - now.keys()))

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

    def _signed(self) -> dict[str, sql.Composable]:
        rm = self.rm
        run, c, f = (rm.col(n) for n in ("run_id", "completed_workers", "failed_workers"))
        # A 64-bit hash of (run, counters), summed as two 31/32-bit halves: sum(int) stays a
        # bigint, where summing bigints would make numeric and cost twice as much.
        return {
            "mark": statement_marker(self.name), "rm": rm.ident,
            "bucket": sql.SQL("hashtextextended({}::text, 0) & {}").format(
                run, sql.Literal(BUCKETS - 1)),
            "h": sql.SQL(
                "hashtextextended({}::text, hashint8extended(coalesce({}, 0)::bigint,"
                " coalesce({}, 0)::bigint))"
            ).format(run, c, f),
            "nonzero": sql.SQL("coalesce({c}, 0) <> 0 OR coalesce({f}, 0) <> 0").format(c=c, f=f),
        }  # fmt: skip

    def total_sql(self) -> sql.Composed:
        """The whole signature of the runs with non-zero counters: count and two hash sums."""
        return sql.SQL(
            "SELECT {mark} count(*), sum((h >> 32)::int), sum((h & 2147483647)::int)"
            " FROM (SELECT {h} AS h FROM {rm} WHERE {nonzero}) AS s"
        ).format(**self._signed())

    def buckets_sql(self) -> sql.Composed:
        """The signature per bucket of runs (a hash of the run id), for non-empty buckets."""
        return sql.SQL(
            "SELECT {mark} b, count(*), sum((h >> 32)::int), sum((h & 2147483647)::int)"
            " FROM (SELECT {bucket} AS b, {h} AS h FROM {rm} WHERE {nonzero}) AS s GROUP BY b"
        ).format(**self._signed())

    def bucket_rows_sql(self) -> sql.Composed:
        """Every run of %(buckets)s with its counters (zeros too: a counter reset is a write)."""
        rm = self.rm
        return sql.SQL(
            "SELECT {mark} {run}, {run}::text, {c}, {f} FROM {rm}"
            " WHERE ({bucket}) = ANY(%(buckets)s::bigint[])"
        ).format(
            run=rm.col("run_id"), c=rm.col("completed_workers"), f=rm.col("failed_workers"),
            **self._signed(),
        )  # fmt: skip


def merge(first: MemoryUpdate, then: MemoryUpdate) -> MemoryUpdate:
    """One update doing `first`'s entry changes and `then`'s summary changes."""
    return MemoryUpdate(
        put=first.put, drop=first.drop, replace=first.replace,
        summary_put=then.summary_put, summary_drop=then.summary_drop,
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


def ledger_arrays(ledger: Mapping[str, JsonValue]) -> dict[str, list[Any]]:
    """The ledger as the parallel arrays diff_sql unnests."""
    keys: list[str] = []
    completed: list[JsonValue] = []
    failed: list[JsonValue] = []
    for key, value in ledger.items():
        assert isinstance(value, list)
        keys.append(key)
        completed.append(value[0])
        failed.append(value[1])
    return {"keys": keys, "c": completed, "f": failed}
