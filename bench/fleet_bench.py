"""Benchmark one `dq-monitor run` watching many databases: cycle time, connections, RSS, scrapes.

Usage (from the repository root, with the project's virtualenv):

    python bench/fleet_bench.py [--small 50] [--small-runs 1000] [--large 10]
                                [--large-rows 1000000] [--duration 240] [--interval 60]
                                [--scrapes 1000] [--json bench/results/fleet_bench.json]

One embedded PostgreSQL server holds every database. Two scenarios, one after the other:

  (a) --small databases, each with the reference tables (schema `jobs`) at --small-runs runs
      x 100 partitions and a couple of seeded defects of each kind (bench/checks_bench.py's
      Dataset, the same generator and defects);
  (b) --large databases at --large-rows partition rows each (100 partitions per run).

Each scenario's data is loaded once into a template database and cloned (CREATE DATABASE ...
TEMPLATE ... STRATEGY FILE_COPY), so every database holds the same tables. A separate
database is the state store. Then the real command, `python -m monitor run`, runs as a
subprocess with every check every --interval seconds (jitter 0: every database's round starts
at the same moment, the worst case for the slots) and the defaults otherwise
(max_concurrent_checks 4, max_connections 100, misfire_grace_time 2m, a full sweep of each
check at start-up since there is no history). For --duration seconds, once a second, it
samples the process's RSS (/proc/PID/status VmRSS) and the server's pg_stat_activity client
backends with application_name dq-monitor (the state database's and the monitored ones';
parallel query workers, which carry the same name, are not connections and not counted). Then it
times --scrapes scrapes of /metrics over one keep-alive loopback connection, reads
dq_check_missed_runs_total, and stops the service with SIGTERM.

Cycle time, from the state store's check_runs: round k is every (database, check)'s k-th
run of its interval job (trigger 'scheduled'; a check that cannot run incrementally runs in
full there, every time); its cycle time is from start + k x interval to the round's last
finished_at, and a round counts only if every database's every check ran in it. The
start-up's full-sweep jobs (trigger 'scheduled-full') run beside round 0 and are timed apart;
the steady figure is the median of rounds 1 and later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from checks_bench import Dataset, say  # noqa: E402
from service_bench import rss_mb, timed_get  # noqa: E402

from config import state_schema_for  # noqa: E402
from monitor.demo.embedded import EmbeddedPostgres, free_port  # noqa: E402

SCHEMA = "jobs"
STATE_DB = "dqstate"
TARGETS = {"rss_mb": 120.0, "metrics_median_ms": 10.0, "missed_runs": 0}


@dataclass
class Sampled:
    rss: list[float] = field(default_factory=list)
    total: list[int] = field(default_factory=list)
    state: list[int] = field(default_factory=list)
    monitored: list[int] = field(default_factory=list)
    working: list[int] = field(default_factory=list)  # monitored, not idle: inside a slot


def build(admin: psycopg.Connection[Any], prefix: str, *, count: int, runs: int, parts: int,
          url: Any) -> list[str]:  # fmt: skip
    """One template database loaded with Dataset, cloned `count` times; the clones' names."""
    template = f"{prefix}_template"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    with psycopg.connect(url(template), autocommit=True) as conn:
        Dataset(conn, SCHEMA, runs, parts, defects_per_kind=2, seed=16, anchor=anchor).load()
    names = [f"{prefix}_{i:02d}" for i in range(count)]
    started = time.perf_counter()
    for name in names:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(template)))  # fmt: skip
    say(f"  cloned {count} databases in {time.perf_counter() - started:.1f}s")
    return names


def config(names: list[str], url: Any, interval: int) -> str:
    lines = [f'state_database_url = "{url(STATE_DB)}"', "", "[schedule]", 'jitter = "0s"', "",
             "[tables]", f'schema_name = "{SCHEMA}"', ""]  # fmt: skip
    from checks import REGISTRY

    for check in REGISTRY.names:
        lines += [f"[checks.{check}]", f'interval = "{interval}s"', ""]
    for name in names:
        lines += ["[[databases]]", f'name = "{name}"', f'url = "{url(name)}"', ""]
    return "\n".join(lines)


def sample(admin: psycopg.Connection[Any], pid: int, into: Sampled) -> None:
    into.rss.append(rss_mb(pid))
    # Client backends only: a check's parallel query workers carry its application_name too
    # but are no connection. A backend whose client just closed is listed until it has
    # exited (a few ms): the non-idle count is the work at once, which the slots bound.
    rows = admin.execute(
        "SELECT datname = %s, count(*), count(*) FILTER (WHERE state <> 'idle')"
        " FROM pg_stat_activity WHERE application_name = 'dq-monitor'"
        " AND backend_type = 'client backend' GROUP BY 1",
        (STATE_DB,),
    ).fetchall()
    counts = {bool(is_state): (int(n), int(busy)) for is_state, n, busy in rows}
    into.state.append(counts.get(True, (0, 0))[0])
    into.monitored.append(counts.get(False, (0, 0))[0])
    into.working.append(counts.get(False, (0, 0))[1])
    into.total.append(into.state[-1] + into.monitored[-1])


def cycles(url: Any, names: list[str], interval: int) -> dict[str, Any]:
    """Per round: seconds from its scheduled moment to its last finished check, if complete."""
    runs: list[tuple[str, str, dt.datetime, dt.datetime]] = []
    with psycopg.connect(url(STATE_DB), autocommit=True) as conn:
        for name in names:
            schema = sql.Identifier(state_schema_for("dq_monitor", name))
            for check, started, finished in conn.execute(
                sql.SQL("SELECT check_name, started_at, finished_at FROM {}.check_runs"
                        " WHERE trigger = 'scheduled' AND status IN ('ok', 'violation', 'error')"
                        ).format(schema)):  # fmt: skip
                runs.append((name, check, started, finished))
        checks = {c for _, c, _, _ in runs}
        full = [conn.execute(sql.SQL("SELECT min(started_at), max(finished_at), count(*) FROM"
                                     " {}.check_runs WHERE trigger = 'scheduled-full'"
                                     " AND status IN ('ok', 'violation', 'error')").format(
                    sql.Identifier(state_schema_for("dq_monitor", name)))).fetchone()
                for name in names]  # fmt: skip
        skipped = sum(
            int(conn.execute(sql.SQL("SELECT count(*) FROM {}.check_runs WHERE status IN"
                                     " ('missed', 'overlap')").format(
                sql.Identifier(state_schema_for("dq_monitor", name)))).fetchone()[0])  # type: ignore[index]
            for name in names
        )  # fmt: skip
    if not runs:
        return {"rounds": [], "skipped_runs": skipped}
    # Each (database, check) runs at most once per tick (coalesce, no overlap): its k-th run
    # is round k's, exact while nothing was missed or skipped (both reported beside).
    start = min(r[2] for r in runs)
    ordinal: dict[tuple[str, str], int] = {}
    buckets: dict[int, list[tuple[str, str, dt.datetime, dt.datetime]]] = {}
    for run in sorted(runs, key=lambda r: r[2]):
        k = ordinal[run[0], run[1]] = ordinal.get((run[0], run[1]), -1) + 1
        buckets.setdefault(k, []).append(run)
    expected = len(names) * len(checks)
    rounds = []
    for k in sorted(buckets):
        rows = buckets[k]
        at = start + dt.timedelta(seconds=k * interval)
        rounds.append({"round": k, "complete": len(rows) == expected, "checks_run": len(rows),
                       "expected": expected,
                       "cycle_seconds": round((max(r[3] for r in rows) - at).total_seconds(),
                                              2)})  # fmt: skip
    steady = [r["cycle_seconds"] for r in rounds if r["complete"] and r["round"] > 0]
    first = [r["cycle_seconds"] for r in rounds if r["complete"] and r["round"] == 0]
    sweeps = [f for f in full if f is not None and f[0] is not None]
    return {"rounds": rounds, "checks_per_database": len(checks), "skipped_runs": skipped,
            # The start-up's full sweeps (no history yet): from the first run's start to the
            # last sweep's end, beside round 0's incremental runs.
            "full_sweeps": sum(int(f[2]) for f in sweeps),
            "full_sweep_round_seconds": round((max(f[1] for f in sweeps) - start)
                                              .total_seconds(), 2) if sweeps else None,
            "first_round_seconds": first[0] if first else None,
            "steady_median_seconds": statistics.median(steady) if steady else None,
            "steady_max_seconds": max(steady) if steady else None}  # fmt: skip


def missed(body: str) -> int:
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                   if line.startswith("dq_check_missed_runs_total{")))  # fmt: skip


def serve(label: str, names: list[str], url: Any, admin: psycopg.Connection[Any], *,
          args: argparse.Namespace, tmp: Path) -> dict[str, Any]:  # fmt: skip
    """Run `dq-monitor run` over `names` for --duration seconds and measure it."""
    cfg = tmp / f"{label}.toml"
    cfg.write_text(config(names, url, args.interval))
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DQ_")},
           "DQ_METRICS_HOST": "127.0.0.1", "DQ_METRICS_PORT": str(port),
           "DQ_LOG_LEVEL": "WARNING"}  # fmt: skip
    log_path = tmp / f"{label}.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip
    say(f"({label}) dq-monitor run (pid {proc.pid}) over {len(names)} databases")
    load_before = os.getloadavg()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        deadline = time.monotonic() + 120
        while True:
            try:
                timed_get(conn, "/healthz")
                break
            except (OSError, AssertionError, http.client.HTTPException) as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = log_path.read_text()[-3000:]
                    raise RuntimeError(f"service did not start:\n{log}") from exc
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                time.sleep(0.2)
        sampled = Sampled()
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            sample(admin, proc.pid, sampled)
            if len(sampled.rss) % 30 == 1:
                say(f"  {end - time.monotonic():4.0f}s left: RSS {sampled.rss[-1]:.1f} MB, "
                    f"connections {sampled.total[-1]} ({sampled.monitored[-1]} monitored)"
                    )  # fmt: skip
            time.sleep(1)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        scrapes = [timed_get(conn, "/metrics") for _ in range(args.scrapes)]
        conn.request("GET", "/metrics")
        final = conn.getresponse().read().decode()
        stopped = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        stop_seconds = time.perf_counter() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
    load_after = os.getloadavg()
    result = {
        "databases": len(names),
        "duration_seconds": args.duration,
        "interval_seconds": args.interval,
        "rss_mb": {"median": round(statistics.median(sampled.rss), 1),
                   "max": round(max(sampled.rss), 1)},
        "connections": {"max": max(sampled.total), "median": statistics.median(sampled.total),
                        "state_max": max(sampled.state),
                        "monitored_max": max(sampled.monitored),
                        "monitored_median": statistics.median(sampled.monitored),
                        "monitored_working_max": max(sampled.working),
                        "samples": len(sampled.total)},
        "metrics_scrape_ms": {"scrapes": args.scrapes, "series": series,
                              "median": round(statistics.median(scrapes) * 1000, 3),
                              "p95": round(statistics.quantiles(scrapes, n=20)[18] * 1000, 3)},
        "missed_runs": missed(final),
        "cycle": cycles(url, names, args.interval),
        "exit_code": code,
        "stop_seconds": round(stop_seconds, 2),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in load_after]},
        "warnings_logged": sum(1 for line in log_path.read_text().splitlines()
                               if "WARNING" in line),
    }  # fmt: skip
    say(f"({label}) {json.dumps(result)}")
    return result


def summary(results: dict[str, Any]) -> str:
    lines = [f"fleet_bench {results['when']} on {results['machine']}", ""]
    for label, r in results["scenarios"].items():
        c = r["cycle"]
        lines += [
            f"{label}: {r['databases']} databases ({r['rows_per_database']:,} partition rows "
            f"each), checks every {r['interval_seconds']}s, {r['duration_seconds']}s of service",
            f"  cycle (every database's checks, one round): first {c['first_round_seconds']}s "
            f"(the start-up's {c.get('full_sweeps')} full sweeps beside it: all done after "
            f"{c.get('full_sweep_round_seconds')}s), steady median {c['steady_median_seconds']}s, "
            f"max {c['steady_max_seconds']}s; complete rounds "
            f"{sum(x['complete'] for x in c['rounds'])}/{len(c['rounds'])}",
            f"  connections held: max {r['connections']['max']} (median "
            f"{r['connections']['median']}); monitored max {r['connections']['monitored_max']} "
            f"(not idle: max {r['connections'].get('monitored_working_max')}), "
            f"state database max {r['connections']['state_max']}",
            f"  RSS: median {r['rss_mb']['median']} MB, max {r['rss_mb']['max']} MB",
            f"  /metrics ({r['metrics_scrape_ms']['series']} series): median "
            f"{r['metrics_scrape_ms']['median']} ms, p95 {r['metrics_scrape_ms']['p95']} ms "
            f"over {r['metrics_scrape_ms']['scrapes']} scrapes",
            f"  missed runs: {r['missed_runs']} (missed or overlapping in check_runs: "
            f"{c['skipped_runs']}); SIGTERM to exit {r['stop_seconds']}s (code "
            f"{r['exit_code']}); load average before/after {r['load_average']['before'][0]}/"
            f"{r['load_average']['after'][0]}",
            "",
        ]
    small = results["scenarios"].get("small")
    if small:
        lines.append("targets (small): " + ", ".join([
            f"RSS max {small['rss_mb']['max']} <= {TARGETS['rss_mb']} MB",
            f"/metrics median {small['metrics_scrape_ms']['median']} <= "
            f"{TARGETS['metrics_median_ms']} ms",
            f"missed {small['missed_runs']} == 0",
        ]))  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--small", type=int, default=50, help="small databases (0: skip)")
    parser.add_argument("--small-runs", type=int, default=1000, help="runs of each (x 100)")
    parser.add_argument("--large", type=int, default=10, help="large databases (0: skip)")
    parser.add_argument("--large-rows", type=int, default=1_000_000, help="rows of each")
    parser.add_argument("--duration", type=int, default=240, help="seconds of service each")
    parser.add_argument("--interval", type=int, default=60, help="every check's interval (s)")
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--json", default=None, help="write results here (and a .txt beside)")
    parser.add_argument("--merge", action="store_true",
                        help="keep --json's scenarios that this run skips")  # fmt: skip
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    pg = EmbeddedPostgres()
    pg.init()
    pg.start()
    tmp = Path(tempfile.mkdtemp(prefix="dq-fleet-bench-"))
    scenarios: dict[str, Any] = {}
    try:
        with psycopg.connect(pg.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(STATE_DB)))
            plan = [("small", args.small, args.small_runs, 100),
                    ("large", args.large, max(1, args.large_rows // 100), 100)]  # fmt: skip
            for label, count, runs, parts in plan:
                if count <= 0:
                    continue
                say(f"({label}) building {count} databases of {runs * parts:,} partition rows")
                names = build(admin, label, count=count, runs=runs, parts=parts, url=pg.url)
                result = serve(label, names, pg.url, admin, args=args, tmp=tmp)
                scenarios[label] = {"rows_per_database": runs * parts, **result,
                                    "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
                for name in [*names, f"{label}_template"]:
                    admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                        sql.Identifier(name)))  # fmt: skip
    finally:
        pg.cleanup()
    results = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} vCPU, PostgreSQL embedded (one server), Python "
        f"{sys.version.split()[0]}",
        "targets": TARGETS,
        "scenarios": scenarios,
    }
    text = summary(results)
    print(text)
    if args.json:
        path = Path(args.json)
        if args.merge and path.exists():  # keep the scenarios not run this time
            earlier = json.loads(path.read_text())
            results["scenarios"] = {**earlier["scenarios"], **scenarios}
            text = summary(results)
        path.write_text(json.dumps(results, indent=2) + "\n")
        Path(args.json).with_suffix(".txt").write_text(text)
    small = scenarios.get("small")
    ok = small is None or (small["rss_mb"]["max"] <= TARGETS["rss_mb"]
                           and small["metrics_scrape_ms"]["median"] <= TARGETS["metrics_median_ms"]
                           and all(s["missed_runs"] == 0 for s in scenarios.values()))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
