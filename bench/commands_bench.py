"""Benchmark of the commands users run, beside the floor and the tools they would pick instead.

Usage (from the repository root, with the project's virtualenv):

    python bench/commands_bench.py [--scales ROWS,...] [--repeat K] [--touch-runs N]
                                   [--venvs DIR] [--json FILE]

It loads the reference data (bench/checks_bench.py's Dataset, server() and floor) at every
scale into one embedded PostgreSQL 18 that logs every statement's duration to a CSV log
(log_min_duration_statement = 0, csvlog, switched on after loading). Before and after each
measured command the benchmark's own connection (application_name cmdbench) runs a marker
statement; a command's server SQL time is the sum of the durations logged between its two
markers by every other session (the monitored database and the state store, database
`dqstate`, are summed apart too).

Each of these runs as its own process (wall time, peak RSS from os.wait4), in --repeat
interleaved rounds after one warm-up round, every scale in every round:

  floor        checks_bench's floor: a sequential count(*) of each of the three tables.
  soda         Soda Core 3.5.6: `soda scan` of the five checks as failed-rows checks.
  qe           query-exporter 5.x: one scrape of /metrics, the five checks as aperiodic
               queries (run at every scrape); the exporter starts once per scale, so its
               start-up is not timed; peak RSS is its VmHWM after the scrape.
  psql         the obvious SQL, one query per check, `psql -f`, every row printed.
  seed         the seed's two verification queries (IMPLEMENTATION_SUMMARY.md), `psql -f`.
  first        `dq-monitor check --full` into a fresh state schema (the first sweep ever).
  daily        `dq-monitor check --full` with the state of the earlier sweeps.
  incremental  `dq-monitor check` after --touch-runs runs changed (re-touched before it).
  service      `dq-monitor run`: from the process's start until every check has recorded
               its first cycle (what a user waits for after a deploy or restart), the runs
               re-touched before it; server SQL until the process exited on SIGTERM.

The five checks are dashboard_mismatch, missing_worker_runs, flag_conflict, stale_partitions
and counter_writes; bench/commands_peers.py holds the peers' definitions. Every tool's
findings are compared with what was seeded (the three consistency checks; stale_partitions
and counter_writes against one reference count) and a mismatch is a problem (exit 1). The
peers are installed by pip into their own virtual environments under --venvs (reused when
present; dq-monitor itself is reinstalled from this tree every run); a peer that cannot be
installed is recorded and left out.

Quick run: --scales 1000000 --repeat 1 (about 5 minutes, most of it loading and installing).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

import commands_peers as peers
from checks_bench import (
    FIX_AGE,
    OVERLAP,
    SEED_COUNTS,
    SEED_DRIFT,
    SERVER_SETTINGS,
    SETTLE_TIME,
    TOUCH_AGE,
    TOUCHED_PARTITIONS,
    Dataset,
    Scale,
    ScaleResult,
    median,
    probe_for,
    say,
    server,
)

from monitor.demo.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
APP = "cmdbench"  # the benchmark's own sessions; their statements are not counted
STATE_DB = "dqstate"
LOG_SETTINGS = {
    "logging_collector": "on",
    "log_destination": "csvlog",
    "log_directory": "log",
    "log_filename": "bench.log",  # csvlog writes bench.csv
    "log_rotation_age": "0",
    "log_rotation_size": "0",
}
PEERS = {
    "soda": ["soda-core-postgres==3.5.6"],
    "qe": ["query-exporter>=5,<6", "psycopg[binary]"],  # SQLAlchemy 2.1's postgresql:// driver
}
LABELS = {
    "floor": "floor: seq scan x 3 tables",
    "soda": "Soda Core, `soda scan` of the five checks",
    "qe": "query-exporter, one scrape of the five queries",
    "psql": "the obvious SQL, one query per check, `psql -f`",
    "seed": "the seed's two verification queries, `psql -f`",
    "first": "`dq-monitor check --full`, first sweep",
    "daily": "`dq-monitor check --full`, daily sweep",
    "incremental": "`dq-monitor check`, incremental after N runs changed",
    "service": "`dq-monitor run`, start to first completed cycle",
}
RETOUCH_AGE = SETTLE_TIME + dt.timedelta(seconds=30)  # settled, inside the next window

assert OVERLAP > RETOUCH_AGE, "a re-touch must fall inside the next incremental window"


@dataclass
class Sample:
    wall: float
    rss: int | None  # bytes
    server: float | None  # seconds, summed from the server's log
    by_database: dict[str, float] = field(default_factory=dict)
    statements: int = 0


@dataclass
class Measured:
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    found: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, key: str, sample: Sample) -> None:
        self.samples.setdefault(key, []).append(sample)


class ServerLog:
    """The server's CSV log, read forward from where the previous measurement ended."""

    def __init__(self, path: Path, admin: psycopg.Connection[Any]) -> None:
        self.path, self.admin, self.offset, self.count = path, admin, 0, 0

    def mark(self, kind: str) -> str:
        self.count += 1
        marker = f"{APP}:{kind}:{self.count}"
        self.admin.execute(sql.SQL("SELECT {}").format(sql.Literal(marker)))
        return marker

    def between(self, start: str, end: str) -> tuple[float, dict[str, float], int]:
        """Seconds of every other session's statements logged between the two markers."""
        deadline = time.monotonic() + 30
        while True:
            raw = self._read()
            stop = raw.find(end)
            if stop >= 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"marker {end} never reached {self.path}")
            time.sleep(0.05)
        begin = raw.find(start)
        newline = raw.find("\n", stop)
        chunk = raw[raw.find("\n", begin) + 1 : raw.rfind("\n", 0, stop) + 1]
        self.offset += len(raw[: newline + 1].encode())
        total, by_db, n = 0.0, {}, 0
        for row in csv.reader(io.StringIO(chunk, newline="")):
            if len(row) < 23 or row[22] == APP:
                continue
            match = _DURATION.match(row[13])
            if match:
                seconds = float(match.group(1)) / 1000
                total += seconds
                by_db[row[2]] = by_db.get(row[2], 0.0) + seconds
                n += 1
        return total, by_db, n

    def _read(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")


_DURATION = re.compile(r"duration: ([0-9.]+) ms")


# --------------------------------------------------------------------------------------------
# Installing


def venv(base: Path, name: str, packages: list[str], fresh: bool = False) -> Path | str:
    """The bin directory of a venv with `packages`, or why it could not be made."""
    home = base / name
    ok = home / ".installed"
    if ok.exists() and not fresh and ok.read_text() == json.dumps(packages):
        return home / "bin"
    say(f"installing {' '.join(packages)} into {home}")
    try:
        if not (home / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        subprocess.run(
            [str(home / "bin" / "pip"), "install", "-q", *packages],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or "").strip().splitlines()
        return f"pip install {' '.join(packages)} failed: {lines[-1] if lines else exc}"
    ok.write_text(json.dumps(packages))
    return home / "bin"


def version_of(bin_dir: Path, distribution: str) -> str:
    out = subprocess.run(
        [str(bin_dir / "python"), "-c",
         f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip() or "unknown"


# --------------------------------------------------------------------------------------------
# Running


TIME = Path("/usr/bin/time")  # GNU time (Debian's package `time`)


def run_process(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of one child process.

    A child's ru_maxrss starts from the forking parent's RSS (Linux keeps the high-water
    mark across exec), so the peak comes from GNU time, which forks the command from its
    own small process; without it, from os.wait4, an overestimate by this script's RSS.
    """
    rss_file = out.with_suffix(".rss")
    rss_file.unlink(missing_ok=True)
    wrapped = [str(TIME), "-f", "%M", "-o", str(rss_file), *argv] if TIME.exists() else argv
    with out.open("w") as sink:
        clock = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - clock
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss * 1024
    if rss_file.exists():
        with contextlib.suppress(ValueError, IndexError):
            rss = int(rss_file.read_text().split()[-1]) * 1024
    return wall, rss, proc.returncode


@dataclass
class Bench:
    args: argparse.Namespace
    admin: psycopg.Connection[Any]
    state: psycopg.Connection[Any]  # the benchmark's connection to the state database
    log: ServerLog
    url: str
    port: int
    psql: Path
    work: Path
    bins: dict[str, Path]
    versions: dict[str, str] = field(default_factory=dict)

    def timed(self, result: Measured, key: str, argv: list[str], env: dict[str, str]) -> str:
        start = self.log.mark("start")
        out = self.work / f"{key}.out"
        wall, rss, code = run_process(argv, {**os.environ, **env}, out)
        end = self.log.mark("end")
        total, by_db, n = self.log.between(start, end)
        result.add(key, Sample(wall, rss, total, by_db, n))
        text = out.read_text()
        result.found[f"{key}_exit"] = code
        return text

    def dq_env(self, schema: str, state_schema: str) -> tuple[list[str], dict[str, str]]:
        config = peers.write(
            self.work / f"dq-{state_schema}.toml",
            f'state_schema = "{state_schema}"\n'
            "[tables]\n"
            f'schema_name = "{schema}"\n'
            "[schedule]\n"
            'jitter = "0s"\n'
            "[checks.consolidation_missed]\nenabled = false\n"
            "[checks.premature_consolidation]\nenabled = false\n",
        )
        env = {
            "DQ_DATABASE_URL": self.url,
            "DQ_STATE_DATABASE_URL": self.url.rsplit("/", 1)[0] + f"/{STATE_DB}",
            "DQ_METRICS_HOST": "127.0.0.1",
            "DQ_LOG_LEVEL": "WARNING",
        }
        return [str(self.bins["dq"] / "dq-monitor"), "--config", str(config)], env

    def dq_check(self, result: Measured, key: str, schema: str, state: str, full: bool) -> None:
        base, env = self.dq_env(schema, state)
        argv = [*base, "check", "--format", "json", *(["--full"] if full else [])]
        text = self.timed(result, key, argv, env)
        try:
            payload = json.loads(text[text.index("{") :])
            found = {r["check"]: r["violations"] for r in payload["results"]}
            result.found[key] = {name: found.get(name) for name in peers.CHECKS}
            result.found[f"{key}_modes"] = sorted({r["mode"] for r in payload["results"]})
        except (ValueError, KeyError) as exc:
            result.found[key] = f"unreadable output ({exc}): {text[-300:]}"

    def service(self, result: Measured, schema: str, state: str) -> None:
        base, env = self.dq_env(schema, state)
        metrics_port = free_port()
        t0 = self.state.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        start = self.log.mark("start")
        out = (self.work / "service.out").open("w")
        clock = time.perf_counter()
        proc = subprocess.Popen(
            [*base, "run", "--metrics-port", str(metrics_port)],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        runs = sql.SQL(
            "SELECT check_name, status, mode FROM {}.check_runs"
            " WHERE started_at >= %s AND finished_at IS NOT NULL"
        ).format(sql.Identifier(state))
        rows: list[Any] = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                rows = self.state.execute(runs, (t0,)).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = []
            if {r[0] for r in rows} >= set(peers.CHECKS):
                break
            time.sleep(0.02)
        wall = time.perf_counter() - clock
        peak = _vm_hwm(proc.pid)  # the process's own peak so far (see run_process)
        proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(proc.pid, 0)
        out.close()
        end = self.log.mark("end")
        total, by_db, n = self.log.between(start, end)
        result.add("service", Sample(wall, peak or usage.ru_maxrss * 1024, total, by_db, n))
        result.found["service_modes"] = sorted({r[2] for r in rows})
        if {r[0] for r in rows} < set(peers.CHECKS):
            result.problems.append(
                f"the service recorded only {sorted(r[0] for r in rows)} before stopping: "
                + (self.work / "service.out").read_text()[-300:]
            )

    def retouch(self, touched: list[str]) -> None:
        """Change the touched runs again, so the next incremental window sees them."""
        params = {"runs": touched, "n": TOUCHED_PARTITIONS, "age": RETOUCH_AGE}
        self.admin.execute(
            "UPDATE partition_progress SET updated_at = now() - %(age)s"
            " WHERE run_id = ANY(%(runs)s) AND partition_id < %(n)s",
            params,
        )
        self.admin.execute(
            "UPDATE worker_runs SET finished_at = now() - %(age)s"
            " WHERE run_id = ANY(%(runs)s) AND partition_id < %(n)s AND status <> 'running'",
            params,
        )


@dataclass
class ScaleRun:
    """One scale: its data, the peers' files, its query-exporter and what was measured."""

    bench: Bench
    data: Dataset
    floor_scale: Scale
    fix: str  # runs started at or after this stopped keeping the counters
    touched: list[str] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    result: Measured = field(default_factory=Measured)
    qe: subprocess.Popen[bytes] | None = None
    qe_port: int = 0
    rounds: int = 0

    @property
    def schema(self) -> str:
        return self.data.schema

    def prepare(self) -> None:
        b, work = self.bench, self.bench.work / self.schema
        work.mkdir(parents=True, exist_ok=True)
        peers.write(work / "checks.yml", peers.soda_checks())
        peers.write(work / "configuration.yml", peers.soda_configuration(
            "127.0.0.1", b.port, "postgres", "dqbench", self.schema))  # fmt: skip
        peers.write(work / "obvious.sql", peers.psql_script())
        peers.write(
            work / "seed.sql",
            "\\echo '#check seed_counts'\n" + SEED_COUNTS.format(sample="") + ";\n"
            "\\echo '#check seed_drift'\n" + SEED_DRIFT.format(sample="") + ";\n",
        )
        if "qe" in b.bins:
            self.qe_port = free_port()
            dsn = (
                f"postgresql://postgres@127.0.0.1:{b.port}/dqbench"
                f"?application_name=query-exporter&options=-csearch_path%3D{self.schema}"
            )
            config = peers.write(work / "qe.yaml", peers.query_exporter_config(dsn, self.fix))
            self.qe = subprocess.Popen(
                [str(b.bins["qe"] / "query-exporter"), "--config", str(config),
                 "-H", "127.0.0.1", "-p", str(self.qe_port), "-L", "warning"],
                stdout=(work / "qe.log").open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.qe.poll() is None:
                try:
                    httpx.get(f"http://127.0.0.1:{self.qe_port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)

    def round(self) -> None:
        b, r, work = self.bench, self.result, self.bench.work / self.schema
        self.data.use()
        floor = ScaleResult(rows=0, runs=0)
        self.floor_scale.result = floor
        self.floor_scale.floor()
        r.add("floor", Sample(floor.times["floor"][0], None, None))
        pg_env = {"PGOPTIONS": f"-c search_path={self.schema}"}
        if "soda" in b.bins:
            results = work / "soda.json"
            results.unlink(missing_ok=True)
            b.timed(r, "soda", [
                str(b.bins["soda"] / "soda"), "scan", "-d", "ds", "-c",
                str(work / "configuration.yml"), "-v", f"fix={self.fix}",
                "-srf", str(results), str(work / "checks.yml"),
            ], {"PGAPPNAME": "soda"})  # fmt: skip
            r.found["soda"] = (
                peers.soda_findings(json.loads(results.read_text()))
                if results.exists() else "no scan results file"
            )  # fmt: skip
        if self.qe is not None:
            self.scrape()
        psql = [str(b.psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-d", f"postgresql://postgres@127.0.0.1:{b.port}/dqbench"]  # fmt: skip
        text = b.timed(
            r,
            "psql",
            [*psql, "-v", f"fix={self.fix}", "-f", str(work / "obvious.sql")],
            {**pg_env, "PGAPPNAME": "psql"},
        )
        r.found["psql"] = peers.psql_findings(text)
        text = b.timed(r, "seed", [*psql, "-f", str(work / "seed.sql")],
                       {**pg_env, "PGAPPNAME": "psql-seed"})  # fmt: skip
        seed = peers.psql_findings(text)
        r.found["seed"] = {"counts_rows": seed.get("seed_counts"),
                           "drift_rows": seed.get("seed_drift")}  # fmt: skip
        fresh = f"dq_first_{self.data.runs}_{self.rounds}"
        b.dq_check(r, "first", self.schema, fresh, full=True)
        b.state.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh)))
        daily = f"dq_daily_{self.data.runs}"
        b.dq_check(r, "daily", self.schema, daily, full=True)
        b.retouch(self.touched)
        b.dq_check(r, "incremental", self.schema, daily, full=False)
        b.retouch(self.touched)
        b.service(r, self.schema, daily)
        self.rounds += 1

    def scrape(self) -> None:
        b, r = self.bench, self.result
        assert self.qe is not None
        start = b.log.mark("start")
        clock = time.perf_counter()
        try:
            text = httpx.get(f"http://127.0.0.1:{self.qe_port}/metrics", timeout=600).text
        except httpx.HTTPError as exc:
            text = f"scrape failed: {exc}"
        wall = time.perf_counter() - clock
        end = b.log.mark("end")
        total, by_db, n = b.log.between(start, end)
        r.add("qe", Sample(wall, _vm_hwm(self.qe.pid), total, by_db, n))
        r.found["qe"] = peers.query_exporter_findings(text)
        if all(v is None for v in r.found["qe"].values()):
            r.found["qe_output"] = text[-500:]

    def check(self) -> None:
        """Every tool must report the seeded defects; the incremental runs only the touched."""
        r = self.result
        for key in ("soda", "qe", "psql", "first", "daily", "incremental"):
            if key in r.found and r.found[key] != self.expected:
                r.problems.append(f"{key} found {r.found[key]}, expected {self.expected}")
        if r.found.get("seed", {}).get("counts_rows") != self.data.runs:
            r.problems.append(f"the seed's count query returned {r.found.get('seed')} rows,"
                              f" expected one per run ({self.data.runs})")  # fmt: skip
        for key, want in (("first_modes", ["full"]), ("daily_modes", ["full"])):
            if r.found.get(key) != want:
                r.problems.append(f"{key} {r.found.get(key)}, expected {want}")
        if "incremental" not in r.found.get("incremental_modes", []):
            r.problems.append(f"incremental ran {r.found.get('incremental_modes')}")
        for key in ("first", "daily", "incremental"):  # 1: violations found, as seeded
            if r.found.get(f"{key}_exit") != 1:
                r.problems.append(f"{key} exited {r.found.get(f'{key}_exit')}, expected 1")

    def stop(self) -> None:
        if self.qe is not None:
            self.qe.terminate()
            self.qe.wait(timeout=30)


def _vm_hwm(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else None


def reference_counts(admin: psycopg.Connection[Any], fix: str) -> dict[str, int]:
    """stale_partitions and counter_writes as counted by the obvious SQL (their reference)."""
    out = {}
    for name in ("stale_partitions", "counter_writes"):
        query = peers.OBVIOUS_SQL[name].replace("{fix}", "%(fix)s::timestamptz")
        row = admin.execute(f"SELECT count(*) FROM ({query}) AS q", {"fix": fix}).fetchone()
        out[name] = row[0]  # type: ignore[index]
    return out


# --------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}  # fmt: skip
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", cpu, re.M)
        info["cpu_model"] = model.group(1) if model else None
        mem = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        info["ram_bytes"] = int(mem.group(1)) * 1024 if mem else None
    except OSError:
        pass
    return info


def summary(runs: list[ScaleRun]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for run in runs:
        floors = [s.wall for s in run.result.samples.get("floor", [])]
        rows: dict[str, Any] = {}
        for key, samples in run.result.samples.items():
            walls = [s.wall for s in samples]
            ratios = [s.wall / f for s, f in zip(samples, floors, strict=False) if f]
            servers = [s.server for s in samples if s.server is not None]
            rss = [s.rss for s in samples if s.rss is not None]
            rows[key] = {
                "median_wall": median(walls), "min_wall": min(walls), "max_wall": max(walls),
                "median_x_floor": median(ratios),
                "median_server": median(servers) if servers else None,
                "min_server": min(servers) if servers else None,
                "max_server": max(servers) if servers else None,
                "median_server_x_floor": median(servers) / median(floors) if servers else None,
                "median_peak_rss": median(rss) if rss else None,
            }  # fmt: skip
        out[str(run.data.runs * run.data.partitions)] = rows
    return out


def table(runs: list[ScaleRun], touch: int) -> list[str]:
    lines = []
    for rows, scale in summary(runs).items():
        lines += [
            "",
            f"{int(rows) / 1e6:g} M partition rows:",
            "",
            "| what | median wall | x floor | server SQL | peak RSS |",
            "|---|---|---|---|---|",
        ]
        for key, label in LABELS.items():
            if key not in scale:
                continue
            s = scale[key]
            spread = f" ({s['min_wall']:.2f}-{s['max_wall']:.2f})"
            server = "" if s["median_server"] is None else (
                f"{s['median_server']:.2f} s ({s['median_server_x_floor']:.1f}x)")  # fmt: skip
            rss = "" if s["median_peak_rss"] is None else f"{s['median_peak_rss'] / 2**20:.0f} MB"
            lines.append(
                f"| {label.replace('N runs', f'{touch} runs')} | {s['median_wall']:.2f} s{spread}"
                f" | {s['median_x_floor']:.1f} | {server} | {rss} |"
            )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--partitions", type=int, default=100, help="partitions per run")
    parser.add_argument("--scales", default="1000000,5000000,10000000",
                        help="partition_progress row counts, comma-separated")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=4, help="timed rounds")
    parser.add_argument("--touch-runs", type=int, default=100, help="runs changed per round")
    parser.add_argument("--defects", type=int, default=5, help="runs per defect kind")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--venvs", default=str(ROOT / "bench" / ".venvs"),
                        help="where the peers' virtual environments live (reused)")  # fmt: skip
    parser.add_argument("--skip", action="append", default=[], choices=sorted(PEERS),
                        help="leave this peer out (repeatable)")  # fmt: skip
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "commands_bench.json"),
                        help="where to write every timing and finding")  # fmt: skip
    parser.add_argument("--pg-setting", action="append", default=[],
                        type=lambda s: tuple(s.split("=", 1)), metavar="NAME=VALUE",
                        help="extra or overriding server setting (repeatable)")  # fmt: skip
    parser.add_argument("--data-dir", help="server directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args(argv)
    try:
        args.rows = sorted({int(s) for s in args.scales.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--scales must be comma-separated row counts, not {args.scales!r}")
    if not args.rows or args.rows[0] < 8 * args.partitions:
        parser.error(f"--scales: each scale needs at least {8 * args.partitions} rows")
    if args.repeat < 1 or args.touch_runs < 1:
        parser.error("--repeat and --touch-runs must be at least 1")
    return args


def install(args: argparse.Namespace, notes: list[str]) -> tuple[dict[str, Path], dict[str, str]]:
    base = Path(args.venvs)
    bins: dict[str, Path] = {}
    versions: dict[str, str] = {}
    wanted = {**{k: v for k, v in PEERS.items() if k not in args.skip}, "dq": [str(ROOT)]}
    for name, packages in wanted.items():
        # dq-monitor is reinstalled every time: the tree under test changes between runs.
        got = venv(base, name, packages, fresh=name == "dq")
        if isinstance(got, str):
            notes.append(f"{name}: not measured, {got}")
            say(f"PROBLEM: {name}: {got}")
            continue
        bins[name] = got
    for name, dist in (("soda", "soda-core"), ("qe", "query-exporter"), ("dq", "dq-monitor")):
        if name in bins:
            versions[name] = version_of(bins[name], dist)
    return bins, versions


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()
    started = dt.datetime.now(dt.UTC)  # the report's date; nothing compares it with rows
    notes: list[str] = []
    bins, versions = install(args, notes)
    args.pg_setting = [*LOG_SETTINGS.items(), *args.pg_setting]
    work = Path(args.venvs) / "work"
    work.mkdir(parents=True, exist_ok=True)
    runs: list[ScaleRun] = []
    with server(args) as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dqbench")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(STATE_DB)))
        url = pg.url("dqbench")
        with (
            psycopg.connect(url, autocommit=True, application_name=APP) as admin,
            psycopg.connect(pg.url(STATE_DB), autocommit=True, application_name=APP) as state,
        ):
            anchor = admin.execute(
                "SELECT date_trunc('second', now()) - interval '1 hour'"
            ).fetchone()[0]  # type: ignore[index]
            fix = (anchor + dt.timedelta(hours=1) - FIX_AGE).isoformat()
            log = ServerLog(pg.data_dir / "log" / "bench.csv", admin)
            bench = Bench(args, admin, state, log, url, pg.port, pg.bin / "psql", work, bins,
                          versions)  # fmt: skip
            for rows in args.rows:
                runs_count = rows // args.partitions
                schema = f"scale_{runs_count * args.partitions}"
                say(f"loading {runs_count * args.partitions:,} partition rows into {schema}")
                data = Dataset(conn=admin, schema=schema, runs=runs_count,
                               partitions=args.partitions, defects_per_kind=args.defects,
                               seed=args.seed, anchor=anchor)  # fmt: skip
                data.load()
                floor = Scale(data, admin, admin, probe_for(schema), ScaleResult(0, 0))
                runs.append(ScaleRun(bench, data, floor, fix))
            now = admin.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            for run in runs:
                run.data.use()
                run.touched = run.data.touch(args.touch_runs, now - TOUCH_AGE)
                run.data.vacuum()
                run.expected = {**run.data.expected.as_dict(), **reference_counts(admin, fix)}
                say(f"  {run.schema}: expecting {run.expected}")
                run.prepare()
            admin.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
            admin.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            try:
                for k in range(args.repeat + 1):
                    for run in runs:
                        run.round()
                        last = ", ".join(f"{key} {v[-1].wall:.2f}s"
                                         for key, v in run.result.samples.items())  # fmt: skip
                        label = "warm-up" if k == 0 else f"round {k}/{args.repeat}"
                        say(f"  {label}, {run.schema}: {last}")
                        if k == 0:
                            run.result.samples.clear()
            finally:
                for run in runs:
                    run.stop()
            for run in runs:
                run.data.use()
                after = reference_counts(admin, fix)
                if {k: run.expected[k] for k in after} != after:
                    run.result.problems.append(f"the reference counts moved to {after}")
                run.check()
            version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    load_end = os.getloadavg()
    lines = table(runs, args.touch_runs)
    lines.append("")
    lines.append(
        f"{started:%Y-%m-%d}, {machine().get('cpu_model')}, {os.cpu_count()} CPUs; PostgreSQL "
        f"{version}; medians of {args.repeat} rounds (wall min-max in brackets); load average "
        f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at end"
    )
    problems = [f"{r.schema}: {p}" for r in runs for p in r.result.problems]
    lines += [f"PROBLEM {p}" for p in problems] + [f"note: {n}" for n in notes]
    print("\n".join(lines), flush=True)
    payload = {
        "date": started.isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items() if k != "pg_setting"},
        "machine": {**machine(), "load_average": {"start": load_start, "end": load_end}},
        "server_version": version,
        "pg_settings": {**SERVER_SETTINGS, **dict(args.pg_setting)},
        "versions": versions,
        "summary": summary(runs),
        "scales": [
            {
                "partition_rows": r.data.runs * r.data.partitions,
                "runs": r.data.runs,
                "expected": r.expected,
                "found": r.result.found,
                "problems": r.result.problems,
                "samples": {k: [vars(s) for s in v] for k, v in r.result.samples.items()},
            }
            for r in runs
        ],
        "notes": notes,
        "report": lines,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
    say(f"wrote {args.json}")
    return 1 if problems or notes else 0


if __name__ == "__main__":
    sys.exit(main())
