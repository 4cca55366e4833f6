"""Benchmark of the consistency sweep against the seed's verification queries and a scan floor.

Usage (from the repository root, with the project's virtualenv):

    python bench/checks_bench.py [--runs N] [--partitions P] [--scales ROWS,ROWS,...]
                                 [--repeat K] [--json FILE]

It starts a throwaway PostgreSQL (monitor.demo.embedded.EmbeddedPostgres; SERVER_SETTINGS are
applied with ALTER SYSTEM and a restart: shared_buffers 8GB, work_mem 64MB, autovacuum off so
nothing runs behind the measurements, ...). Every scale in --scales (a partition_progress row
count; the main scale --runs x --partitions is always one of them) gets its own schema with the
reference schema (checks/reference/schema.sql, indexes included) and its own data. Then one
untimed warm-up round and --repeat timed rounds run every measurement at every scale, so all
figures come from the same minutes of the same run; the report gives medians:

  (d) floor       a sequential scan (SELECT count(*) with index scans disabled) of
                  run_metadata, partition_progress and worker_runs, summed.
  (a) seed        both "Verification Queries" of the seed's IMPLEMENTATION_SUMMARY.md (one
                  row per run with four correlated counts; counter drift), without the LIMIT,
                  every row fetched. --seed-sample F times them on a random fraction F of the
                  runs instead and extrapolates linearly (the output says so).
  (b) sweep       the real code path: checks.build_probes(checks.select_checks(settings,
                  [dashboard_mismatch, missing_worker_runs, flag_conflict])), then
                  probe.evaluate(conn, Window(Mode.FULL, known=...)) on a read-only dq-monitor
                  connection, three ways each round:
                  (b1) first: nothing known (the first sweep ever), so every run is screened;
                  (b)  daily: known = the runs (b1) found defects in, as the service passes the
                       state store's findings to its daily sweep: one signature per table;
                  (b2) surprise: known = all but one of those runs, as if a defect had appeared
                       where no earlier run saw one: the signature fails, every run is screened.
  (b3) three      one straightforward set-based query per check, one after the other.
  (c0) the least (c) must do: read every row of the changed runs (SELECT count of a heap
                  column WHERE run_id = ANY(touched runs), both tables), timed beside (c).
  (c) incremental --touch-runs runs were changed before the rounds (a few progress rows of each
                  got a new updated_at and flag, their worker rows new times and status, all at
                  "now minus 10 minutes", settled under settle_time 2m; one touched run got a
                  flag conflict): probe.evaluate(conn, Window(Mode.INCREMENTAL, since=<that time
                  minus incremental_overlap 5m>)), timed 5 times per round, the scales
                  taking turns.

  (e1-e3) the consolidation checks, each through its own probe as dq-monitor builds it:
                  consolidation_missed's full sweep (every open run judged),
                  premature_consolidation as a full sweep and incremental (the touched runs).
                  --only-consolidation times only (d) and (e), which skips the slow rest.

Times are absolute seconds and ratios to (d) at the same scale. The findings are checked too:
the sweep and the three queries must report exactly the seeded defects, the incremental run
must judge exactly the touched runs and find the one conflict, else the script says so and
exits 1.

The data (deterministic, hash-based, generated in SQL with INSERT ... SELECT generate_series,
in batches of 2,000 runs with a progress line each): one run starts every minute (run ids
'run-00000000' upwards, the newest an hour ago, so the runs span days to weeks); each run has
--partitions partitions, about 3% failed and the rest completed except 1 in 4096 stuck (neither,
with a 'running' worker row); every partition has one worker row whose status matches, and
about 1 in 128 also keeps the abandoned first attempt of a retry ('running', never finished).
Rows are inserted in the order the job system writes them (progress rows by completion time,
worker rows by start time), so neither table is clustered by run. Runs started more than 14
days ago keep the deprecated counters in run_metadata (non-zero); newer runs have 0. A run's
status is 'running' if it has a stuck partition, else 'completed'. Each scale
seeds --defects runs of each defect kind: the seed's race (a failed partition whose worker row a
retry deleted: dashboard_mismatch + missing_worker_runs), a flag conflict (flag_conflict +
dashboard_mismatch), a worker row with the wrong status, and a worker row for a partition the
run does not have (dashboard_mismatch each); and, in the statuses only, a finished run left
'running' (consolidation_missed) and a stuck run marked 'completed' (premature_consolidation).
Loading runs with session_replication_role=replica
(foreign-key triggers skipped; the data is consistent by construction), then VACUUM (ANALYZE).
The probes run with a 10-minute statement_timeout so a slow variant is measured, not cancelled.

The default run (50,000 runs x 100 partitions; scales 1M, 5M and 10M; --repeat 5) takes about
18 minutes on the 2-core, 24 GiB machine it was written on: ~8 loading 16M + 16M rows, ~8
measuring. Quick smoke test: --runs 2000 --partitions 50 --scales 50000 --repeat 2 (10 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from checks import (  # noqa: E402
    Evaluation,
    Mode,
    Probe,
    Window,
    build_probes,
    reference_schema,
    select_checks,
)
from checks.consistency import ConsistencyProbe  # noqa: E402
from checks.consolidation_missed import ConsolidationMissed  # noqa: E402
from checks.premature_consolidation import PrematureConsolidation  # noqa: E402
from config import Settings, TablesSettings  # noqa: E402
from monitor.db import connect  # noqa: E402
from monitor.demo.embedded import EmbeddedPostgres  # noqa: E402

CHECKS = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict")
CONSOLIDATION = ("consolidation_missed", "premature_consolidation")

SERVER_SETTINGS = {
    "shared_buffers": "8GB",  # a third of the RAM: all scales (about 6 GB at 1M+5M+10M) stay cached
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "effective_cache_size": "16GB",
    "random_page_cost": "1.1",  # data in memory / on SSD
    "max_wal_size": "32GB",  # no checkpoint storm while loading
    "checkpoint_timeout": "1h",
    "autovacuum": "off",  # VACUUM (ANALYZE) runs explicitly after each load and touch
    "jit": "off",
}

RUN_STEP = dt.timedelta(minutes=1)  # one run starts every minute
FIX_AGE = dt.timedelta(days=14)  # runs older than this kept the deprecated counters
FAILED_PER_1024 = 30  # about 3% of partitions fail
SETTLE_TIME = dt.timedelta(minutes=2)
OVERLAP = dt.timedelta(minutes=5)  # Settings.incremental_overlap's default
TOUCH_AGE = dt.timedelta(minutes=10)
TOUCHED_PARTITIONS = 5  # progress rows touched per touched run
BATCH_RUNS = 2000
INCREMENTAL_PER_ROUND = 5  # (c) is short: time it this many times per round

_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class Expected:
    """What the checks must find: runs with a dashboard mismatch, partitions for the others."""

    dashboard_mismatch: int = 0
    missing_worker_runs: int = 0
    flag_conflict: int = 0
    consolidation_missed: int = 0
    premature_consolidation: int = 0

    def consolidation(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in CONSOLIDATION}

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in CHECKS}


@dataclass
class Dataset:
    """One scale's reference tables in a schema of their own, and the defects seeded in them."""

    conn: psycopg.Connection[Any]
    schema: str
    runs: int
    partitions: int
    defects_per_kind: int
    seed: int
    anchor: dt.datetime  # the newest run starts here
    defect_runs: set[int] = field(default_factory=set)
    expected: Expected = field(default_factory=Expected)

    @staticmethod
    def run_id(i: int) -> str:
        return f"run-{i:08d}"

    def use(self) -> None:
        """Point the connection's unqualified table names at this scale's tables."""
        self.conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    def create(self) -> None:
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.use()
        self.conn.execute(reference_schema())

    # One row per (run i, partition p): a hash h of (i, p) decides its fate; t is when the
    # partition finished (or last changed).
    _GRID = (
        "SELECT i, p, 'run-' || lpad(i::text, 8, '0') AS run_id,"
        " %(base)s::timestamptz + i * interval '1 minute' AS run_start,"
        " %(base)s::timestamptz + i * interval '1 minute' + p * interval '3 seconds'"
        "  + (h & 1023) * interval '1 millisecond' AS t,"
        " (h >> 17) & 4095 = 0 AS stuck,"
        " (h >> 17) & 4095 <> 0 AND h & 1023 < %(failed)s AS is_failed,"
        " (h >> 17) & 4095 <> 0 AND h & 1023 >= %(failed)s AS is_completed,"
        " (h >> 10) & 127 = 0 AS retried,"
        " (20 + (h & 1023) %% 40) * interval '1 second' AS took"
        " FROM generate_series(%(lo)s::int, %(hi)s::int - 1) AS i"
        " CROSS JOIN generate_series(0, %(parts)s::int - 1) AS p"
        " CROSS JOIN LATERAL (SELECT hashint8(i::bigint * %(parts)s + p) AS h) AS x"
    )

    def load(self) -> None:
        """Create and fill the tables in batches of runs, seed the defects, VACUUM (ANALYZE)."""
        self.create()
        clock = time.perf_counter()
        cur = self.conn.cursor()
        cur.execute("SET session_replication_role = replica")
        base = self.anchor - (self.runs - 1) * RUN_STEP
        for lo in range(0, self.runs, BATCH_RUNS):
            hi = min(self.runs, lo + BATCH_RUNS)
            params = {
                "lo": lo, "hi": hi, "parts": self.partitions, "base": base,
                "fix": self.anchor + dt.timedelta(hours=1) - FIX_AGE, "failed": FAILED_PER_1024,
            }  # fmt: skip
            cur.execute(
                "INSERT INTO run_metadata (run_id, started_at, status, completed_workers,"
                " failed_workers)"
                " SELECT run_id, run_start,"
                "  CASE WHEN bool_or(stuck) THEN 'running' ELSE 'completed' END,"
                "  CASE WHEN run_start < %(fix)s THEN count(*) FILTER (WHERE is_completed)"
                "  ELSE 0 END,"
                "  CASE WHEN run_start < %(fix)s THEN count(*) FILTER (WHERE is_failed) ELSE 0 END"
                f" FROM ({self._GRID}) AS g GROUP BY i, run_id, run_start ORDER BY i",
                params,
            )
            cur.execute(
                "INSERT INTO partition_progress (run_id, partition_id, completed, failed,"
                " updated_at)"
                f" SELECT run_id, p, is_completed, is_failed, t FROM ({self._GRID}) AS g"
                " ORDER BY t",
                params,
            )
            cur.execute(
                "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
                " SELECT run_id, p, a.status, a.started_at, a.finished_at"
                f" FROM ({self._GRID}) AS g CROSS JOIN LATERAL (VALUES"
                "  (CASE WHEN stuck THEN 'running' WHEN is_failed THEN 'failed'"
                "   ELSE 'completed' END, t - took, CASE WHEN stuck THEN NULL ELSE t END, true),"
                "  ('running', t - took - interval '90 seconds', NULL, retried AND NOT stuck)"
                " ) AS a(status, started_at, finished_at, present)"
                " WHERE a.present ORDER BY a.started_at",
                params,
            )
            done, total = hi * self.partitions, self.runs * self.partitions
            spent = time.perf_counter() - clock
            say(
                f"  {self.schema}: loaded runs {hi:,}/{self.runs:,} ({done:,}/{total:,} progress"
                f" rows, {done / spent:,.0f}/s, ETA {spent / done * (total - done):.0f}s)"
            )
        self._seed_defects()
        cur.execute("RESET session_replication_role")
        self.vacuum()

    def _seed_defects(self) -> None:
        rng = random.Random(f"{self.seed}-{self.runs}")
        count = min(self.defects_per_kind, self.runs // 8)
        picked = rng.sample(range(self.runs), 4 * count)
        self.defect_runs.update(picked)
        races, conflicts, flips, orphans = (picked[k * count : (k + 1) * count] for k in range(4))
        cur = self.conn.cursor()
        for i in races:  # the seed's race: a retry deleted a failed partition's worker row
            run = self.run_id(i)
            cur.execute(
                "UPDATE partition_progress SET completed = false, failed = true"
                " WHERE run_id = %s AND partition_id = 0",
                (run,),
            )
            cur.execute("DELETE FROM worker_runs WHERE run_id = %s AND partition_id = 0", (run,))
            cur.execute(
                "UPDATE run_metadata SET failed_workers = failed_workers + 1"
                " WHERE run_id = %s AND failed_workers > 0",
                (run,),
            )
        for i in conflicts:
            cur.execute(
                "UPDATE partition_progress SET completed = true, failed = true"
                " WHERE run_id = %s AND partition_id = 0",
                (self.run_id(i),),
            )
        for i in flips:  # one consistent partition's worker row gets the other status
            cur.execute(
                "UPDATE worker_runs SET status = CASE status WHEN 'completed' THEN 'failed'"
                " ELSE 'completed' END"
                " WHERE id = (SELECT min(w.id) FROM worker_runs AS w"
                "  JOIN partition_progress AS p USING (run_id, partition_id)"
                "  WHERE w.run_id = %s AND w.status <> 'running' AND p.completed <> p.failed)",
                (self.run_id(i),),
            )
            assert cur.rowcount == 1
        for i in orphans:  # a worker row for a partition the run does not have
            cur.execute(
                "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
                " SELECT run_id, %s, 'completed', started_at, started_at + interval '1 minute'"
                " FROM run_metadata WHERE run_id = %s",
                (self.partitions + 1000, self.run_id(i)),
            )
        self.expected.dashboard_mismatch += 4 * count
        self.expected.missing_worker_runs += count
        self.expected.flag_conflict += count
        # Statuses only (the consistency checks do not read them): finished runs left
        # 'running' (consolidation missed), and runs with a stuck partition marked 'completed'.
        for status, was in (("completed", "running"), ("running", "completed")):
            cur.execute(
                "UPDATE run_metadata SET status = %(status)s WHERE run_id IN (SELECT run_id"
                " FROM run_metadata AS rm WHERE status = %(was)s AND NOT EXISTS (SELECT"
                "  FROM partition_progress AS p WHERE p.run_id = rm.run_id"
                "  AND NOT p.completed AND NOT p.failed AND %(was)s = 'completed')"
                " ORDER BY md5(run_id) LIMIT %(n)s) RETURNING run_id",
                {"status": status, "was": was, "n": count},
            )
            changed = [int(run.removeprefix("run-")) for (run,) in cur.fetchall()]
            assert len(changed) == count, f"too few {was} runs"
            self.defect_runs.update(changed)  # kept out of the touched runs
        self.expected.consolidation_missed += count
        self.expected.premature_consolidation += count
        say(
            f"  {self.schema}: seeded {count} runs of each defect kind "
            "(race, flag conflict, wrong worker status, orphan worker row, consolidation "
            "missed, premature consolidation)"
        )

    def vacuum(self) -> None:
        clock = time.perf_counter()
        for table in ("run_metadata", "partition_progress", "worker_runs"):
            self.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        say(f"  {self.schema}: VACUUM (ANALYZE) done in {time.perf_counter() - clock:.1f}s")

    def touch(self, count: int, at: dt.datetime) -> list[str]:
        """Change `count` defect-free runs at `at`, consistently except one flag conflict."""
        rng = random.Random(f"{self.seed}-touch-{self.runs}")
        pool = [i for i in rng.sample(range(self.runs), count * 2) if i not in self.defect_runs]
        runs = [self.run_id(i) for i in pool[:count]]
        assert len(runs) == count, "too few runs to touch"
        cur = self.conn.cursor()
        cur.execute(
            "UPDATE partition_progress SET updated_at = %(at)s,"
            " completed = CASE WHEN partition_id = 1 AND (completed OR failed) THEN false"
            "  ELSE completed END,"
            " failed = CASE WHEN partition_id = 1 AND (completed OR failed) THEN true"
            "  ELSE failed END"
            " WHERE run_id = ANY(%(runs)s) AND partition_id < %(n)s",
            {"at": at, "runs": runs, "n": TOUCHED_PARTITIONS},
        )
        cur.execute(
            "UPDATE worker_runs SET started_at = %(at)s - interval '30 seconds',"
            " finished_at = %(at)s,"
            " status = CASE WHEN partition_id = 1 THEN 'failed' ELSE status END"
            " WHERE run_id = ANY(%(runs)s) AND partition_id < %(n)s AND status <> 'running'",
            {"at": at, "runs": runs, "n": TOUCHED_PARTITIONS},
        )
        cur.execute(
            "UPDATE partition_progress SET completed = true, failed = true"
            " WHERE run_id = %s AND partition_id = 2",
            (runs[0],),
        )
        self.expected.flag_conflict += 1
        self.expected.dashboard_mismatch += 1
        return runs


# --------------------------------------------------------------------------------------------
# The measured queries

SEED_COUNTS = """
SELECT
  rm.run_id,
  rm.completed_workers as old_completed,
  rm.failed_workers as old_failed,
  (SELECT COUNT(*) FROM partition_progress pp
   WHERE pp.run_id = rm.run_id AND pp.completed = TRUE) as computed_completed,
  (SELECT COUNT(*) FROM partition_progress pp
   WHERE pp.run_id = rm.run_id AND pp.failed = TRUE) as computed_failed,
  (SELECT COUNT(*) FROM worker_runs wr
   WHERE wr.run_id = rm.run_id AND wr.status = 'completed') as worker_runs_completed,
  (SELECT COUNT(*) FROM worker_runs wr
   WHERE wr.run_id = rm.run_id AND wr.status = 'failed') as worker_runs_failed
FROM run_metadata rm
{sample}ORDER BY rm.started_at DESC
"""

SEED_DRIFT = """
SELECT
  rm.run_id,
  rm.failed_workers as old_counter,
  (SELECT COUNT(*) FROM partition_progress pp
   WHERE pp.run_id = rm.run_id AND pp.failed = TRUE) as actual_failed
FROM run_metadata rm
WHERE rm.failed_workers != (
  SELECT COUNT(*) FROM partition_progress pp
  WHERE pp.run_id = rm.run_id AND pp.failed = TRUE
){sample}
"""

THREE_QUERIES = {
    "dashboard_mismatch": (
        "SELECT run_id, p.completed, w.completed, p.failed, w.failed"
        " FROM (SELECT run_id, count(*) FILTER (WHERE completed) AS completed,"
        "   count(*) FILTER (WHERE failed) AS failed"
        "  FROM partition_progress GROUP BY run_id) AS p"
        " FULL JOIN (SELECT run_id, count(*) FILTER (WHERE status = 'completed') AS completed,"
        "   count(*) FILTER (WHERE status = 'failed') AS failed"
        "  FROM worker_runs GROUP BY run_id) AS w USING (run_id)"
        " WHERE coalesce(p.completed, 0) <> coalesce(w.completed, 0)"
        "  OR coalesce(p.failed, 0) <> coalesce(w.failed, 0)"
    ),
    "missing_worker_runs": (
        "SELECT run_id, partition_id FROM partition_progress AS p"
        " WHERE (completed OR failed) AND NOT EXISTS (SELECT FROM worker_runs AS w"
        "  WHERE w.run_id = p.run_id AND w.partition_id = p.partition_id)"
    ),
    "flag_conflict": (
        "SELECT run_id, partition_id FROM partition_progress WHERE completed AND failed"
    ),
}

FLOOR_TABLES = ("run_metadata", "partition_progress", "worker_runs")


@dataclass
class ScaleResult:
    rows: int
    runs: int
    worker_rows: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    parts: dict[str, list[float]] = field(default_factory=dict)  # each of the three queries
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    found: dict[str, Any] = field(default_factory=dict)

    def med(self, key: str) -> float:
        return median(self.times.get(key, []))

    def record(self, key: str, seconds: float) -> None:
        self.times.setdefault(key, []).append(seconds)


@dataclass
class Scale:
    """One scale's data, its probe (configured for the scale's schema) and its timings."""

    data: Dataset
    admin: psycopg.Connection[Any]  # autocommit, search_path switched per scale
    monitor: psycopg.Connection[Any]  # what dq-monitor opens: read-only, autocommit
    probe: ConsistencyProbe
    result: ScaleResult
    consolidation: dict[str, Probe] = field(default_factory=dict)
    seed_sample: list[str] | None = None
    seed_factor: float = 1.0
    touched: list[str] = field(default_factory=list)
    known: frozenset[str] = frozenset()  # runs the first full sweep found defects in
    since: dt.datetime | None = None
    cutoff: dt.datetime | None = None

    def floor(self) -> None:
        # A plain scan of each table: sequential, reading the heap. (Left to itself the
        # planner counts worker_runs from its narrowest index, which reads no table rows.)
        total = 0.0
        for table in FLOOR_TABLES:
            with self.admin.transaction():
                self.admin.execute("SET LOCAL enable_indexscan = off")
                self.admin.execute("SET LOCAL enable_indexonlyscan = off")
                self.admin.execute("SET LOCAL enable_bitmapscan = off")
                clock = time.perf_counter()
                self.admin.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                total += time.perf_counter() - clock
        self.result.record("floor", total)

    def seed(self) -> None:
        sample = self.seed_sample
        where_counts = "WHERE rm.run_id = ANY(%(sample)s)\n" if sample is not None else ""
        and_drift = " AND rm.run_id = ANY(%(sample)s)" if sample is not None else ""
        params = {"sample": sample} if sample is not None else None
        clock = time.perf_counter()
        counts = self.admin.execute(SEED_COUNTS.format(sample=where_counts), params).fetchall()
        drift = self.admin.execute(SEED_DRIFT.format(sample=and_drift), params).fetchall()
        self.result.record("seed", (time.perf_counter() - clock) * self.seed_factor)
        self.result.found["seed_rows"] = {"counts": len(counts), "drift": len(drift)}

    def sweep(self) -> None:
        """The full sweep three ways: first ever, as the service runs it, and surprised.

        The first sweep knows nothing and screens every run. The service's daily sweep knows
        the runs that had findings after its last run (here: what the first sweep found) and
        proves the rest clean by signature. The surprised sweep is told all but one of those
        runs, as if a defect had appeared where no earlier run saw one, so it falls back to
        screening every run after the signature failed.
        """
        for key, screen in (("first", "per-run"), ("sweep", "signature"), ("surprise", "per-run")):
            known = {
                "first": None,
                "sweep": self.known,
                "surprise": self.known - {min(self.known, default="")},
            }[key]
            clock = time.perf_counter()
            evaluation = self.probe.evaluate(self.monitor, Window(Mode.FULL, known=known))
            self.result.record(key, time.perf_counter() - clock)
            self.result.found[key] = violations(evaluation)
            self.result.found[f"{key}_unsettled"] = max(
                len(e.unsettled) for e in evaluation.values()
            )
            used = {e.screen for e in evaluation.values()}
            if used != {screen}:
                self.result.problems.append(f"{key} sweep screened {used}, expected {screen}")
            if key == "first":
                self.known = frozenset(f.run_key for e in evaluation.values() for f in e.findings)

    def three(self) -> None:
        found, total = {}, 0.0
        for name, query in THREE_QUERIES.items():
            clock = time.perf_counter()
            found[name] = len(self.admin.execute(query).fetchall())
            seconds = time.perf_counter() - clock
            self.result.parts.setdefault(name, []).append(seconds)
            total += seconds
        self.result.record("three", total)
        self.result.found["three"] = found

    def incremental(self) -> None:
        assert self.since is not None
        clock = time.perf_counter()
        evaluation = self.probe.evaluate(self.monitor, Window(Mode.INCREMENTAL, since=self.since))
        self.result.record("incremental", time.perf_counter() - clock)
        self.result.found["incremental"] = violations(evaluation)
        self.result.found["incremental_judged"] = evaluation[CHECKS[0]].judged_count

    def consolidation_checks(self) -> None:
        """(e) the two consolidation checks: consolidation_missed's full sweep (every
        open run judged), premature_consolidation full and incremental (the touched runs)."""
        assert self.since is not None
        missed, premature = (self.consolidation[n] for n in CONSOLIDATION)
        for key, probe, window in (
            ("missed", missed, Window(Mode.FULL)),
            ("premature_full", premature, Window(Mode.FULL)),
            ("premature_inc", premature, Window(Mode.INCREMENTAL, since=self.since)),
        ):
            clock = time.perf_counter()
            evaluation = probe.evaluate(self.monitor, window)
            self.result.record(key, time.perf_counter() - clock)
            (found,) = evaluation.values()
            self.result.found[key] = sum(f.violations for f in found.findings)
            self.result.found[f"{key}_judged"] = found.judged_count

    def changed_rows(self) -> None:
        """(c0): only reading the changed runs' rows (one heap column each) via the indexes."""
        clock = time.perf_counter()
        self.admin.execute(
            "SELECT (SELECT count(updated_at) FROM partition_progress WHERE run_id = ANY(%(r)s)),"
            " (SELECT count(status) FROM worker_runs WHERE run_id = ANY(%(r)s))",
            {"r": self.touched},
        ).fetchall()
        self.result.record("changed_rows", time.perf_counter() - clock)

    def check(self, touch_runs: int, only_consolidation: bool = False) -> None:
        """Compare what was found with what was seeded."""
        found, problems = self.result.found, self.result.problems
        want = self.data.expected.consolidation()
        for key, name in (("missed", CONSOLIDATION[0]), ("premature_full", CONSOLIDATION[1])):
            if found.get(key) != want[name]:
                problems.append(f"{name} found {found.get(key)}, expected {want[name]}")
        if found.get("premature_inc") != 0 or found.get("premature_inc_judged") != touch_runs:
            problems.append(
                f"incremental premature_consolidation found {found.get('premature_inc')} in "
                f"{found.get('premature_inc_judged')} runs, expected 0 in {touch_runs}"
            )
        if only_consolidation:
            return
        expected = self.data.expected.as_dict()
        for key in ("first", "sweep", "surprise", "three"):  # no run is unsettled: all agree
            if found.get(key) != expected:
                problems.append(f"{key} found {found.get(key)}, expected {expected}")
            if found.get(f"{key}_unsettled"):
                problems.append(f"{key} left {found[f'{key}_unsettled']} runs unsettled")
        incremental = {"dashboard_mismatch": 1, "missing_worker_runs": 0, "flag_conflict": 1}
        if found.get("incremental") != incremental:
            problems.append(f"incremental found {found.get('incremental')}, expected {incremental}")
        if found.get("incremental_judged") != touch_runs:
            problems.append(
                f"incremental judged {found.get('incremental_judged')} runs, expected {touch_runs}"
            )

    def explain(self, only_consolidation: bool = False) -> None:
        """Record the plan shapes of the sweep, the changed-runs query and the floor."""
        found, monitor = self.result.found, self.monitor
        missed, premature = (self.consolidation[n] for n in CONSOLIDATION)
        assert isinstance(missed, ConsolidationMissed)
        assert isinstance(premature, PrematureConsolidation)
        terminal = {"terminal": ["completed", "failed"], "cutoff": self.cutoff}
        with monitor.transaction():
            found["plan_missed"] = plan_shape(monitor, missed.open_runs_sql(), terminal)
            open_runs = [r for (r, _) in monitor.execute(missed.open_runs_sql(), terminal)]
            found["plan_missed"] += plan_shape(monitor, missed.partitions_sql(), {
                "runs": open_runs, "cutoff": self.cutoff})
            found["plan_premature_full"] = plan_shape(
                monitor, premature.premature_sql(incremental=False), terminal
            )
        if only_consolidation:
            return
        params = {
            "cutoff": self.cutoff, "limit": self.probe.env.sample_limit,
            "completed_status": "completed", "failed_status": "failed",
            "runs": self.touched, "since": self.since,
        }  # fmt: skip
        probe = self.probe
        with monitor.transaction():
            # The daily full sweep: one signature of each table, then the known runs exactly.
            found["plan_signature"] = plan_shape(
                monitor, probe.signature_sql(integer_ids=True, focused=False), params
            )
            # A first sweep screens every run, then judges the suspects like an incremental run.
            found["plan_sweep"] = plan_shape(monitor, probe.screen_sql(integer_ids=True), params)
            found["plan_changed_runs"] = plan_shape(monitor, probe.changed_runs_sql(), params)
            found["plan_incremental_screen"] = plan_shape(
                monitor, probe.screen_sql(integer_ids=True, focused=True), params
            )
            # The exact judgment (here of all touched runs; the real runs judge the suspects).
            found["plan_incremental"] = plan_shape(monitor, probe.sweep_sql(), params)
        found["plan_floor"] = []
        for table in FLOOR_TABLES:
            with self.admin.transaction():
                for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
                    self.admin.execute(f"SET LOCAL {setting} = off")
                shape = plan_shape(self.admin, f"SELECT count(*) FROM {table}", None)
                found["plan_floor"].append(shape[-1].strip())


def violations(result: dict[str, Evaluation]) -> dict[str, int]:
    """Runs with a dashboard mismatch; partitions for the other two checks."""
    return {name: sum(f.violations for f in result[name].findings) for name in CHECKS}


def plan_shape(conn: psycopg.Connection[Any], query: Any, params: Any) -> list[str]:
    """The plan's nodes as indented lines (EXPLAIN without ANALYZE)."""
    row = conn.execute(
        sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query)
        if isinstance(query, sql.Composable)
        else "EXPLAIN (FORMAT JSON) " + query,
        params,
    ).fetchone()
    assert row is not None
    lines: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        label = node["Node Type"]
        for key in ("Strategy", "Join Type"):
            if key in node and node[key] not in ("Plain", "Inner"):
                label = f"{node[key]} {label}" if key == "Join Type" else f"{label} ({node[key]})"
        if "Index Name" in node:
            label += f" using {node['Index Name']}"
        elif "Relation Name" in node:
            label += f" on {node['Relation Name']}"
        lines.append("  " * depth + label)
        for child in node.get("Plans", ()):
            walk(child, depth + 1)

    walk(row[0][0]["Plan"], 0)
    return lines


# --------------------------------------------------------------------------------------------
# Driver


LABELS = {
    "floor": "(d) floor: seq scan x 3 tables",
    "seed": "(a) seed verification queries",
    "sweep": "(b) full sweep, daily (known runs)",
    "first": "(b1) first full sweep (none known)",
    "surprise": "(b2) full sweep, a new defect",
    "three": "(b3) three straightforward queries",
    "incremental": "(c) incremental, N runs changed",
    "changed_rows": "(c0) only reading their rows",
    "missed": "(e1) consolidation_missed, any mode",
    "premature_full": "(e2) premature_consolidation, full",
    "premature_inc": "(e3) premature_consol., N runs changed",
}


def consolidation_plans(main: ScaleResult, main_rows: int) -> list[str]:
    out = [f"Plans of the consolidation checks at {main_rows / 1e6:g}M rows:"]
    for key, title in (
        ("plan_missed", "consolidation_missed"),
        ("plan_premature_full", "premature_consolidation, full"),
    ):
        out.append(f"  {title}:")
        out.extend("    " + line for line in main.found[key])
    return out


def report(  # noqa: PLR0912 - one branch per optional part of the report
    results: list[ScaleResult], main_rows: int, args: argparse.Namespace
) -> list[str]:
    out = []
    width = 40
    header = f"{'':{width}}" + "".join(f" | {f'{r.rows / 1e6:g}M rows':>20}" for r in results)
    out.append(header)
    out.append(f"{'':{width}}" + "".join(f" | {'seconds  x floor':>20}" for _ in results))
    out.append("-" * len(header))
    for key, label in LABELS.items():
        line = f"{label.replace('N runs', f'{args.touch_runs} runs'):{width}}"
        for r in results:
            if key not in r.times:
                line += f" | {'-':>20}"
                continue
            value = r.med(key)
            line += f" | {value:9.3f}  {value / r.med('floor'):8.2f}x"
        out.append(line)
    out.append("-" * len(header))
    for r in results:
        out.append(
            f"{r.rows / 1e6:g}M: {r.runs:,} runs, worker_runs {r.worker_rows:,} rows; medians of "
            f"{args.repeat} rounds ((c): {len(r.times.get('incremental', []))} runs)"
        )
        spread = ", ".join(f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in r.times.items())
        out.append(f"  min-max seconds: {spread}")
        if "three" not in r.times:
            continue
        three = ", ".join(f"{k} {median(v):.3f}" for k, v in r.parts.items())
        out.append(f"  (b3) per query, median seconds: {three}")
        out.extend(f"  note: {n}" for n in r.notes)
    main = next(r for r in results if r.rows == main_rows)
    out.extend(consolidation_plans(main, main_rows))
    if "sweep" not in main.times:
        return out
    sweep, floor = main.med("sweep"), main.med("floor")
    out.append("")
    out.append(f"Targets at the main scale ({main_rows / 1e6:g}M partition rows):")

    def target(ok: bool, text: str) -> str:
        return f"  [{'met   ' if ok else 'MISSED'}] {text}"

    out.append(target(sweep <= 3 * floor, f"(b) <= 3x (d): (b) = {sweep / floor:.2f}x (d)"))
    if "seed" in main.times:
        seed = main.med("seed")
        out.append(
            target(seed >= 10 * sweep, f"(b) >= 10x faster than (a): (a)/(b) = {seed / sweep:.2f}")
        )
    for key in ("first", "surprise"):
        other = main.med(key)
        line = f"  the same for ({LABELS[key].split(')')[0][1:]}): {other / floor:.2f}x (d)"
        if "seed" in main.times:
            line += f", (a)/({key}) = {main.med('seed') / other:.2f}"
        out.append(line)
    inc = main.med("incremental")
    out.append(target(inc * 50 <= sweep, f"(c) <= (b)/50: (b)/(c) = {sweep / inc:.0f}"))
    if len(results) > 1:
        incs = [r.med("incremental") for r in results]
        out.append(
            target(
                max(incs) <= 1.2 * min(incs),
                f"(c) flat (within 1.2x) from {results[0].rows / 1e6:g}M to "
                f"{results[-1].rows / 1e6:g}M rows: max/min = {max(incs) / min(incs):.2f}",
            )
        )
    if "seed" in main.times:
        out.append(
            f"  for reference: (b3)/(b) = {main.med('three') / sweep:.2f}, "
            f"(a)/(d) = {main.med('seed') / floor:.2f}, (b3)/(d) = {main.med('three') / floor:.2f}"
        )
    out.append("")
    out.append(f"Plans at {main_rows / 1e6:g}M rows (EXPLAIN, node types):")
    for key, title in (
        ("plan_signature", "daily full sweep: the whole-table signature"),
        ("plan_sweep", "first full sweep: screening every run"),
        ("plan_changed_runs", "incremental: changed runs"),
        ("plan_incremental_screen", "incremental: screening the changed runs"),
        ("plan_incremental", "exact judgment of given runs (the suspects of any kind of run)"),
    ):
        out.append(f"  {title}:")
        out.extend("    " + line for line in main.found[key])
        differ = [f"{r.rows / 1e6:g}M" for r in results if r.found[key] != main.found[key]]
        if differ:
            out.append(f"    (differs at {', '.join(differ)}; see the JSON)")
    out.append("  floor: " + "; ".join(main.found["plan_floor"]))
    return out


@contextmanager
def server(args: argparse.Namespace) -> Iterator[EmbeddedPostgres]:
    # Without --data-dir the server makes its own directory: as root it must be one the
    # server's service user may enter, and only a directory the server created gets that mode.
    pg = EmbeddedPostgres(base_dir=Path(args.data_dir) if args.data_dir else None)
    base = pg.base_dir
    say(f"starting PostgreSQL in {base}")
    pg.init()
    pg.start()
    try:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            for name, value in {**SERVER_SETTINGS, **dict(args.pg_setting)}.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
        pg.restart()
        yield pg
    finally:
        if args.keep:
            say(f"server kept running: {pg.url('dqbench')} (data in {base}); "
                f"stop it with: {pg.stop_command()}")
        else:
            pg.cleanup()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=50_000, help="runs at the main scale")
    parser.add_argument("--partitions", type=int, default=100, help="partitions per run")
    parser.add_argument(
        "--scales",
        default="1000000,5000000,10000000",
        help="partition_progress row counts to measure at, comma-separated (the main scale "
        "runs x partitions is added if missing); the data grows from one to the next",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per scale")
    parser.add_argument("--json", metavar="FILE", help="write every timing and finding here")
    parser.add_argument("--touch-runs", type=int, default=100, help="runs changed for (c)")
    parser.add_argument("--defects", type=int, default=5, help="runs per defect kind per load")
    parser.add_argument(
        "--seed-sample",
        type=float,
        default=1.0,
        help="time the seed's queries on this random fraction of runs and extrapolate",
    )
    parser.add_argument(
        "--seed-main-only",
        action="store_true",
        help="time the seed's queries at the main scale only",
    )
    parser.add_argument(
        "--only-consolidation",
        action="store_true",
        help="time only the floor and the two consolidation checks (e1-e3)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        metavar="NAME=VALUE",
        help="extra or overriding server setting (repeatable)",
    )
    parser.add_argument("--data-dir", help="server directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the server running at the end")
    args = parser.parse_args(argv)
    if not 0 < args.seed_sample <= 1:
        parser.error("--seed-sample must be in (0, 1]")
    if args.partitions < 3:
        parser.error("--partitions must be at least 3")
    return args


def probe_for(schema: str) -> ConsistencyProbe:
    """The consistency probe dq-monitor builds for the three checks, on `schema`'s tables."""
    settings = Settings(
        tables=TablesSettings(schema_name=schema),
        settle_time=SETTLE_TIME,
        sample_limit=20,
        statement_timeout=dt.timedelta(minutes=10),
    )
    probes = build_probes(select_checks(settings, CHECKS))
    assert len(probes) == 1, "the three checks share one consistency probe"
    probe = probes[0]
    assert isinstance(probe, ConsistencyProbe)
    return probe


def consolidation_probes(schema: str) -> dict[str, Probe]:
    """The probes dq-monitor builds for the two consolidation checks (one each)."""
    settings = Settings(
        tables=TablesSettings(schema_name=schema),
        settle_time=SETTLE_TIME,
        sample_limit=20,
        statement_timeout=dt.timedelta(minutes=10),
    )
    probes = build_probes(select_checks(settings, CONSOLIDATION))
    return {probe.names[0]: probe for probe in probes}


def measure(scales: list[Scale], args: argparse.Namespace, main_rows: int) -> None:
    """One warm-up round, then --repeat rounds of every task at every scale.

    The short incremental runs of all scales alternate in one block per round, so that a
    burst of load from other processes hits every scale alike.
    """
    for k in range(args.repeat + 1):
        label = "warm-up round" if k == 0 else f"round {k}/{args.repeat}"
        for scale in scales:
            scale.data.use()
            scale.floor()
            scale.consolidation_checks()
            if args.only_consolidation:
                continue
            scale.sweep()
            scale.three()
            if scale.result.rows == main_rows or not args.seed_main_only:
                scale.seed()
        for _ in range(0 if args.only_consolidation else INCREMENTAL_PER_ROUND):
            for scale in scales:
                scale.data.use()
                scale.incremental()
                scale.changed_rows()
        for scale in scales:
            times = scale.result.times
            last = ", ".join(f"{key} {values[-1]:.3f}s" for key, values in times.items())
            say(f"  {label}, {scale.result.rows / 1e6:g}M rows: {last}")
            if k == 0:
                times.clear()
                scale.result.parts.clear()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()
    main_rows = args.runs * args.partitions
    rows_list = sorted({int(s) for s in args.scales.split(",") if s.strip()} | {main_rows})
    say(
        f"dq-monitor checks benchmark: {args.partitions} partitions per run, scales "
        f"{', '.join(f'{r:,}' for r in rows_list)} partition rows (main {main_rows:,}), "
        f"{args.repeat} rounds"
    )
    scales: list[Scale] = []
    load_seconds: dict[str, float] = {}
    with server(args) as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dqbench")
        url = pg.url("dqbench")
        with (
            psycopg.connect(url, autocommit=True) as admin,
            connect(
                SecretStr(url),
                purpose="database",
                connect_timeout=dt.timedelta(seconds=10),
                read_only=True,
            ) as monitor,
        ):
            row = admin.execute("SELECT date_trunc('second', now()) - interval '1 hour'")
            anchor = row.fetchone()[0]  # type: ignore[index]
            for rows in rows_list:
                runs = max(8, rows // args.partitions)
                schema = f"scale_{runs * args.partitions}"
                say(f"loading {runs * args.partitions:,} partition rows ({runs:,} runs) "
                    f"into schema {schema}")  # fmt: skip
                clock = time.perf_counter()
                data = Dataset(
                    conn=admin, schema=schema, runs=runs, partitions=args.partitions,
                    defects_per_kind=args.defects, seed=args.seed, anchor=anchor,
                )  # fmt: skip
                data.load()
                load_seconds[schema] = time.perf_counter() - clock
                result = ScaleResult(rows=runs * args.partitions, runs=runs)
                scale = Scale(data, admin, monitor, probe_for(schema), result)
                scale.consolidation = consolidation_probes(schema)
                if args.seed_sample < 1.0:
                    rng = random.Random(f"{args.seed}-sample-{runs}")
                    k = max(1, round(runs * args.seed_sample))
                    scale.seed_sample = [
                        Dataset.run_id(i) for i in sorted(rng.sample(range(runs), k))
                    ]
                    scale.seed_factor = runs / k
                    result.notes.append(
                        f"(a) timed on a random {k:,} of {runs:,} runs and multiplied by "
                        f"{scale.seed_factor:.2f} (linear extrapolation)"
                    )
                scales.append(scale)
            now = admin.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            at = now - TOUCH_AGE
            for scale in scales:
                scale.data.use()
                scale.touched = scale.data.touch(args.touch_runs, at)
                scale.since, scale.cutoff = at - OVERLAP, now - SETTLE_TIME
                scale.data.vacuum()
                count = admin.execute("SELECT count(*) FROM worker_runs").fetchone()
                scale.result.worker_rows = count[0]  # type: ignore[index]
            say(
                f"touched {args.touch_runs} runs of each scale at now-10min; the incremental "
                "runs start 5min before that"
            )
            measure(scales, args, main_rows)
            for scale in scales:
                scale.data.use()
                scale.check(args.touch_runs, args.only_consolidation)
                scale.explain(args.only_consolidation)
                for problem in scale.result.problems:
                    say(f"PROBLEM at {scale.result.rows:,} rows: {problem}")
            sizes = admin.execute(
                "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid)"
                " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname LIKE 'scale%' AND c.relkind = 'r'"
            ).fetchall()
            version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    results = [scale.result for scale in scales]
    lines = report(results, main_rows, args)
    load_end = os.getloadavg()
    lines.append(
        f"Load average (1/5/15 min) at start {load_start[0]:.2f}/{load_start[1]:.2f}/"
        f"{load_start[2]:.2f}, at end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f} "
        f"on {os.cpu_count()} CPUs; PostgreSQL {version}; run took "
        f"{time.perf_counter() - _T0:.0f}s"
    )
    print()
    print("\n".join(lines), flush=True)
    problems = [p for r in results for p in r.problems]
    if args.json:
        payload = {
            "args": {k: v for k, v in vars(args).items() if k != "pg_setting"},
            "pg_settings": {**SERVER_SETTINGS, **dict(args.pg_setting)},
            "server_version": version,
            "total_seconds": round(time.perf_counter() - _T0, 1),
            "load_seconds": {k: round(v, 1) for k, v in load_seconds.items()},
            "table_bytes": dict(sizes),
            "scales": [
                {
                    "partition_rows": r.rows,
                    "runs": r.runs,
                    "worker_rows": r.worker_rows,
                    "median_seconds": {k: r.med(k) for k in r.times},
                    "ratio_to_floor": {k: r.med(k) / r.med("floor") for k in r.times},
                    "seconds": r.times,
                    "three_query_seconds": r.parts,
                    "found": r.found,
                    "notes": r.notes,
                    "problems": r.problems,
                }
                for r in results
            ],
            "load_average": {"start": load_start, "end": load_end},
            "report": lines,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        say(f"wrote {args.json}")
    say(f"done in {time.perf_counter() - _T0:.0f}s")
    if problems:
        say(f"{len(problems)} problem(s): the checks did not find exactly the seeded defects")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
