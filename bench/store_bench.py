"""Benchmark of the state store after a simulated year: its size, a gate evaluation, a /metrics
snapshot load, and pruning it to retention.history.

Usage (from the repository root, with the project's virtualenv):

    python bench/store_bench.py [--days 365] [--checks 20] [--repeat 5] [--json FILE]

It starts a throwaway PostgreSQL 18 (checks_bench's server(), autovacuum off), loads a small
monitored database (checks_bench's Dataset: 2,000 runs x 10 partitions, schema `jobs`; the gate
reads its catalog) and fills the state store, through the real schema upgrade, with --days of
history of --checks checks every minute (the 7 built-ins and custom ones), generated in SQL with
INSERT ... SELECT generate_series, a day range per statement:

  check_runs      one row per check per minute; a full sweep per check each day at 00:00;
                  the non-gating checks find a violation in 1 run of 720 (half a day apart on
                  average), with a sample; the gating checks are clean for the last 30 days.
  alert_outbox    a firing and a resolved message per violation episode of a non-gating check,
                  about 1% dead, 10 pending; sent_at a few seconds after created_at.
  findings        20 current findings per non-gating check.
  pgss_samples    one per gate evaluation (every 5 minutes), with 300 statements.
  silences        one ended silence a week.
  check_stats, delivery_stats, service_state as the service keeps them.

Then, in --repeat interleaved rounds after a warm-up, each timed on its own:

  gate            Gatekeeper(...).evaluate() for migration 005, as `dq-monitor gate` runs it
                  (history, silences, pg_stat_statements sample, catalog evidence).
  snapshot        StateStore.stats(): what every replica loads for /metrics every 5 s.
  cycle reads     the state-store reads of one check cycle: window_start() of a check,
                  last_full_sweep() and known_runs() of the consistency checks.

measured (1) on the year without schema 8's indexes (dropped, then rebuilt; a note says so),
(2) on the year, (3) after prune_history() with retention.history 90d (its own time, batches and
the longest batch are reported) and a VACUUM. Sizes are pg_total_relation_size per state table
after the load, after the prune with VACUUM (the space PostgreSQL reuses, as autovacuum would
leave it) and after VACUUM FULL (what a store pruned from the start levels out at).
Targets: gate evaluation at most 1 s, snapshot load at most 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from checks_bench import ROOT, Dataset, say, server  # noqa: E402

from alerts import SystemClock  # noqa: E402
from checks import REGISTRY, all_checks  # noqa: E402
from config import load_settings  # noqa: E402
from monitor.app import App  # noqa: E402
from monitor.gate import Gatekeeper, prune_history  # noqa: E402
from monitor.store import STATE_TABLES  # noqa: E402

SCHEMA = "dq_monitor"
V8_INDEXES = {
    "check_runs_check_finished_idx": "(check_name, finished_at)",
    "check_runs_full_sweeps_idx": "(check_name, id DESC) WHERE mode = 'full'"
    " AND status IN ('ok', 'violation')",
}
CONSISTENCY = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict")
DAYS_PER_STATEMENT = 5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days of history to simulate")
    parser.add_argument("--checks", type=int, default=20, help="checks, each every minute")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per phase")
    parser.add_argument("--json", default=str(BENCH / "results" / "store_bench.json"))
    parser.add_argument("--data-dir", help="server directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args(argv)
    if args.checks < len(REGISTRY.names):
        parser.error(f"--checks must be at least the {len(REGISTRY.names)} built-ins")
    if args.days < 100:
        parser.error("--days must be at least 100 (more than the 90 days kept)")
    # checks_bench's server() takes these; shared_buffers smaller than its 8GB (one small store).
    args.pg_setting = [("shared_buffers", "2GB")]
    return args


def check_names(count: int) -> list[str]:
    return [*REGISTRY.names, *(f"custom_{i:02d}" for i in range(count - len(REGISTRY.names)))]


def environment(url: str, names: list[str]) -> dict[str, str]:
    custom = [{"name": n, "sql": "SELECT 1 WHERE false", "interval": "1m"}
              for n in names if n not in REGISTRY.names]  # fmt: skip
    env = {"DQ_DATABASE_URL": url, "DQ_TABLES__SCHEMA_NAME": "jobs",
           "DQ_CHECKS__CUSTOM": json.dumps(custom)}  # fmt: skip
    for name in REGISTRY.names:
        env[f"DQ_CHECKS__{name.upper()}__INTERVAL"] = "1m"
    return env


def fill(conn: psycopg.Connection[Any], names: list[str], days: int) -> None:
    """A year (--days) of the service's writes, in SQL, a few days per statement."""
    gating = list(REGISTRY.gating)
    s = sql.Identifier(SCHEMA)
    started = time.perf_counter()
    for first in range(days, 0, -DAYS_PER_STATEMENT):
        last = max(first - DAYS_PER_STATEMENT, 0)
        # m: minutes before now; h: a hash of (check, minute) deciding violations.
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.check_runs (check_name, started_at, finished_at, mode, status,"
                " severity, violations, samples, note, snapshot_at, watermark, judged_runs,"
                " duration_seconds, fingerprint, trigger, host, interval_seconds)"
                " SELECT c, t - interval '40 ms', t, CASE WHEN full_sweep THEN 'full'"
                "  ELSE 'incremental' END, CASE WHEN bad THEN 'violation' ELSE 'ok' END,"
                "  'warning', bad::int, CASE WHEN bad THEN json_build_array(json_build_object("
                "  'run_id', 'run-' || (h & 65535), 'partition_id', h & 63)) ELSE '[]' END,"
                "  NULL, t, t, CASE WHEN full_sweep THEN 20000 ELSE 12 END,"
                "  CASE WHEN full_sweep THEN 2.5 ELSE 0.04 END, 'fp-' || c,"
                "  CASE WHEN full_sweep THEN 'scheduled-full' ELSE 'scheduled' END,"
                "  'replica-1:4242', 60"
                " FROM generate_series(%(first)s::int * 1440 - 1, %(last)s::int * 1440, -1) AS m,"
                " unnest(%(names)s::text[]) AS c,"
                " LATERAL (SELECT date_trunc('minute', now()) - make_interval(mins => m) AS t,"
                "  abs(hashtext(c || m::text)) AS h) AS x,"
                " LATERAL (SELECT extract(hour FROM t) = 0 AND extract(minute FROM t) = 0"
                "  AS full_sweep, (h %% 720 = 0) AND NOT (c = ANY(%(gating)s)"
                "  AND m < 30 * 1440) AS bad) AS y"
                " ORDER BY m DESC, c"
            ).format(s=s),
            {"first": first, "last": last, "names": names, "gating": gating},
        )
        done = days - last
        spent = time.perf_counter() - started
        eta = spent / done * (days - done)
        say(f"  check_runs: {done}/{days} days ({spent:.0f}s, ETA {eta:.0f}s)")
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.alert_outbox (idempotency_key, fingerprint, check_name, route, kind,"
            " payload, status, attempts, created_at, next_attempt_at, sent_at, response_status)"
            " SELECT 'fp-' || r.check_name || '-' || k || '-' || r.id, 'fp-' || r.check_name,"
            "  r.check_name, 'ops', k, json_build_object('check', r.check_name, 'samples',"
            "  r.samples), CASE WHEN r.id % 100 = 0 THEN 'dead' ELSE 'sent' END, 1,"
            "  r.finished_at + o, r.finished_at + o,"
            "  CASE WHEN r.id % 100 = 0 THEN NULL ELSE r.finished_at + o + interval '2 s' END,"
            "  CASE WHEN r.id % 100 = 0 THEN 500 ELSE 200 END"
            " FROM {s}.check_runs AS r, (VALUES ('firing', interval '0'),"
            "  ('resolved', interval '5 minutes')) AS v(k, o)"
            " WHERE r.status = 'violation' ORDER BY r.id"
        ).format(s=s)
    )
    conn.execute(
        sql.SQL(
            "UPDATE {s}.alert_outbox SET status = 'pending', sent_at = NULL,"
            " next_attempt_at = now()"
            " WHERE id IN (SELECT id FROM {s}.alert_outbox ORDER BY id DESC LIMIT 10)"
        ).format(s=s)
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.findings (check_name, run_key, violations, samples, judged_at)"
            " SELECT c, 'run-' || g, 1, json_build_array(json_build_object('run_id', 'run-' || g)),"
            " now() FROM unnest(%(names)s::text[]) AS c, generate_series(1, 20) AS g"
            " WHERE NOT (c = ANY(%(gating)s))"
        ).format(s=s),
        {"names": names, "gating": gating},
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.pgss_samples (sampled_at, available, dealloc, stats_reset,"
            " statements, lost) SELECT now() - make_interval(mins => 5 * g), true, 0,"
            " now() - make_interval(days => %(days)s), 300, 0"
            " FROM generate_series(%(days)s * 288, 1, -1) AS g"
        ).format(s=s),
        {"days": days},
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.silences (check_name, starts_at, ends_at, created_by, reason)"
            " SELECT 'custom_00', now() - make_interval(days => 7 * g),"
            " now() - make_interval(days => 7 * g) + interval '2 hours', 'ops', 'maintenance'"
            " FROM generate_series(%(weeks)s, 1, -1) AS g"
        ).format(s=s),
        {"weeks": days // 7},
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.check_stats (check_name, severity, last_status, last_mode,"
            " last_run_at, last_success_at, last_duration, runs_total, duration_buckets,"
            " duration_sum) SELECT c, 'warning', 'ok', 'incremental', now(), now(), 0.04,"
            " %(runs)s, ARRAY[0, 0, 0, %(runs)s, 0, 0, 0, 0, 0, %(days)s, 0, 0, 0, 0, 0, 0],"
            " %(runs)s * 0.04 FROM unnest(%(names)s::text[]) AS c"
        ).format(s=s),
        {"names": names, "runs": days * 1440, "days": days},
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.delivery_stats (route, sent_total, dead_total, duration_buckets)"
            " SELECT 'ops', count(*) FILTER (WHERE status = 'sent'),"
            " count(*) FILTER (WHERE status = 'dead'), '{{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}}'"
            " FROM {s}.alert_outbox"
        ).format(s=s)
    )
    say(f"  filled in {time.perf_counter() - started:.0f}s; VACUUM ANALYZE")
    conn.execute("VACUUM ANALYZE")


def sizes(conn: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for table in STATE_TABLES:
        name = sql.Identifier(SCHEMA, table)
        row = conn.execute(
            sql.SQL("SELECT pg_total_relation_size({}), (SELECT count(*) FROM {})").format(
                sql.Literal(f'"{SCHEMA}"."{table}"'), name
            )
        ).fetchone()
        assert row is not None
        found[table] = {"bytes": int(row[0]), "rows": int(row[1])}
    return found


def total_mb(found: dict[str, dict[str, int]]) -> float:
    return sum(v["bytes"] for v in found.values()) / 2**20


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


class Measures:
    """The timed actions, sharing one App (connections opened once, as the service does)."""

    def __init__(self, app: App) -> None:
        self.app = app
        store = app.store
        self.check = next(c for c in all_checks(app.settings) if c.name == "stale_partitions")
        self.actions: dict[str, Callable[[], object]] = {
            "gate": self.gate,
            "snapshot": store.stats,
            "cycle_reads": self.cycle_reads,
        }
        self.last_gate: Any = None

    def cycle_reads(self) -> None:
        store = self.app.store
        store.window_start(self.check)
        store.last_full_sweep(CONSISTENCY)
        store.known_runs(CONSISTENCY)

    def gate(self) -> None:
        app = self.app
        self.last_gate = Gatekeeper(app.settings, app.store, app.primary, app.clock
                                    ).evaluate()  # fmt: skip

    def rounds(self, repeat: int, label: str) -> dict[str, Any]:
        for action in self.actions.values():  # warm-up
            action()
        times: dict[str, list[float]] = {name: [] for name in self.actions}
        for i in range(repeat):
            for name, action in self.actions.items():
                times[name].append(timed(action))
            say(f"  {label} round {i + 1}/{repeat}: "
                + ", ".join(f"{n} {t[-1] * 1000:.1f} ms" for n, t in times.items()))  # fmt: skip
        return {
            name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
                   "all_s": t}
            for name, t in times.items()
        } | {"gate_decision": self.last_gate.decision.value if self.last_gate else None,
             "gate_clean_since": self.last_gate.clean_since.isoformat()
             if self.last_gate and self.last_gate.clean_since else None}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = check_names(args.checks)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start",
        "days": args.days, "checks": len(names), "repeat": args.repeat,
    }  # fmt: skip
    with server(args) as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dqstore")
        url = pg.url("dqstore")
        os.environ.update(environment(url, names))
        with psycopg.connect(url, autocommit=True) as admin:
            row = admin.execute("SELECT version(), current_date").fetchone()
            assert row is not None
            results["server"], results["date"] = row[0], row[1].isoformat()
            anchor = admin.execute("SELECT date_trunc('second', now()) - interval '1 hour'")
            data = Dataset(conn=admin, schema="jobs", runs=2000, partitions=10,
                           defects_per_kind=0, seed=1, anchor=anchor.fetchone()[0])  # type: ignore[index]  # fmt: skip
            data.load()
            settings = load_settings()
            app = App.open(settings, clock=SystemClock())
            try:
                say(f"filling the state store: {args.days} days x {len(names)} checks a minute")
                load = timed(lambda: fill(admin, names, args.days))
                results["load_seconds"] = load
                results["sizes_year"] = sizes(admin)
                say(f"  store after {args.days} days: {total_mb(results['sizes_year']):.0f} MB")
                measures = Measures(app)
                for index in V8_INDEXES:
                    admin.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(SCHEMA, index)))
                results["year_without_v8_indexes"] = measures.rounds(args.repeat, "no v8 indexes")
                for index, definition in V8_INDEXES.items():
                    using, _, where = definition.partition(" WHERE ")
                    admin.execute(
                        sql.SQL("CREATE INDEX {} ON {} " + using
                                + (" WHERE " + where if where else "")).format(
                            sql.Identifier(index), sql.Identifier(SCHEMA, "check_runs"))
                    )  # fmt: skip
                admin.execute("ANALYZE")
                results["year"] = measures.rounds(args.repeat, "year")
                batches: list[float] = []
                mark = [time.perf_counter()]

                def progress(table: str, deleted: int) -> None:
                    now = time.perf_counter()
                    batches.append(now - mark[0])
                    mark[0] = now
                    if len(batches) % 200 == 0:
                        say(f"  prune: {table} {deleted:,} rows deleted, {len(batches)} batches")

                say("pruning to retention.history 90d")
                began = time.perf_counter()
                pruned = prune_history(settings, app.store, app.clock.now(), progress)
                results["prune"] = {
                    "seconds": time.perf_counter() - began, "batches": pruned.batches,
                    "batch_size": settings.retention.batch_size, "deleted": pruned.deleted,
                    "longest_batch_s": max(batches, default=0.0),
                    "median_batch_s": statistics.median(batches) if batches else 0.0,
                    "summary": pruned.summary(),
                }  # fmt: skip
                say(pruned.summary())
                admin.execute("VACUUM ANALYZE")
                results["sizes_pruned_vacuumed"] = sizes(admin)
                results["after_prune"] = measures.rounds(args.repeat, "after prune")
                admin.execute("VACUUM FULL")
                admin.execute("ANALYZE")
                results["sizes_pruned_vacuum_full"] = sizes(admin)
            finally:
                app.close()
    report(results)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


def report(r: dict[str, Any]) -> None:
    def ms(phase: str, name: str) -> str:
        m = r[phase][name]
        return f"{m['median_s'] * 1000:.1f} ms ({m['min_s'] * 1000:.1f}-{m['max_s'] * 1000:.1f})"

    print(f"\n{r['days']} days x {r['checks']} checks a minute; {r['machine']}; {r['server']}")
    print("| | year, without schema 8's indexes | year | after pruning to 90 days |")
    print("|---|---|---|---|")
    for name in ("gate", "snapshot", "cycle_reads"):
        print(f"| {name} | {ms('year_without_v8_indexes', name)} | {ms('year', name)} |"
              f" {ms('after_prune', name)} |")  # fmt: skip
    for phase in ("year_without_v8_indexes", "year", "after_prune"):
        print(f"gate decision ({phase}): {r[phase]['gate_decision']}, clean since "
              f"{r[phase]['gate_clean_since']}")  # fmt: skip
    p = r["prune"]
    print(f"prune: {p['summary']}; longest batch {p['longest_batch_s'] * 1000:.0f} ms, median "
          f"{p['median_batch_s'] * 1000:.0f} ms")  # fmt: skip
    print("| table | year | pruned + VACUUM | pruned + VACUUM FULL |")
    print("|---|---|---|---|")
    for table in ("check_runs", "alert_outbox", "pgss_samples", "findings", "silences"):
        phases = ("sizes_year", "sizes_pruned_vacuumed", "sizes_pruned_vacuum_full")
        cells = [f"{r[k][table]['bytes'] / 2**20:.1f} MB ({r[k][table]['rows']:,} rows)"
                 for k in phases]  # fmt: skip
        print(f"| {table} | " + " | ".join(cells) + " |")
    totals = [f"{total_mb(r[k]):.0f} MB" for k in
              ("sizes_year", "sizes_pruned_vacuumed", "sizes_pruned_vacuum_full")]  # fmt: skip
    print("| all state tables | " + " | ".join(totals) + " |")


if __name__ == "__main__":
    sys.exit(main())
