"""Whole-process wall time of the commands a user types: `--help`, `check --help`, `check`.

Usage (from the repository root, with the project's virtualenv):

    python bench/startup_bench.py [--runs N] [--partitions P] [--repeat K] [--touch-runs T]
                                  [--json FILE]

It starts a throwaway PostgreSQL (monitor.demo.embedded.EmbeddedPostgres), loads the reference
data of bench/checks_bench.py (its Dataset: --runs x --partitions progress rows, seeded defects)
into a schema of its own, and runs `dq-monitor check --full` once so that every later `check`
is incremental. Then --repeat interleaved rounds each run, as separate processes
(`python -m monitor ...`, timed with time.perf_counter around subprocess.run):

  help        dq-monitor --help
  check-help  dq-monitor check --help
  check       dq-monitor check, after --touch-runs runs changed (touched before every round,
              untimed), so each is the incremental cycle the service would run

and prints the median, minimum and maximum of each, wall and CPU (user + system) time. A `check`
exits 1 (the seeded defects are violations); any other exit code stops the benchmark.

Every command first runs once untimed with bytecode writing on, so the timed runs read
compiled modules as an installed package does (pip compiles them; PYTHONDONTWRITEBYTECODE
would otherwise make every run compile dq-monitor from source). --source DIR runs the
commands from another checkout (its directory first on sys.path), to time a commit before a
change beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checks_bench import Dataset  # the reference data, loaded the same way

from monitor.demo import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "startup"
COMMANDS = {
    "help": ["--help"],
    "check-help": ["check", "--help"],
    "check": ["check"],
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    argv: Sequence[str], env: dict[str, str], ok: Sequence[int], source: Path
) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `python -m monitor ARGV` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *argv],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - clock
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"dq-monitor {' '.join(argv)} exited {done.returncode}: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs in the data")
    parser.add_argument("--partitions", type=int, default=100, help="partitions per run")
    parser.add_argument("--repeat", type=int, default=10, help="timed rounds")
    parser.add_argument("--touch-runs", type=int, default=100, help="runs changed per round")
    parser.add_argument("--json", metavar="FILE", help="write every timing here")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="checkout whose dq-monitor runs (default: this)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pg = EmbeddedPostgres()
    pg.init()
    pg.start()
    try:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dqstart")
        url = pg.url("dqstart")
        with psycopg.connect(url, autocommit=True) as admin:
            anchor = admin.execute("SELECT date_trunc('second', now()) - interval '1 hour'")
            data = Dataset(
                conn=admin, schema=SCHEMA, runs=args.runs, partitions=args.partitions,
                defects_per_kind=5, seed=42, anchor=anchor.fetchone()[0],  # type: ignore[index]
            )  # fmt: skip
            data.load()
            with tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp) / "dq.toml"
                config.write_text(f'[tables]\nschema_name = "{SCHEMA}"\n')
                env = {**os.environ, "DQ_DATABASE_URL": url, "DQ_CONFIG": str(config)}
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                run(["check", "--full"], env, ok=(0, 1), source=args.source)
                for command in COMMANDS.values():  # untimed: compiles every module once
                    run(command, env, ok=(0, 1), source=args.source)
                times: dict[str, list[float]] = {name: [] for name in COMMANDS}
                cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
                for round_no in range(args.repeat):
                    now = admin.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
                    data.touch(args.touch_runs, now - dt.timedelta(minutes=3))
                    for name, command in COMMANDS.items():
                        wall, used = run(command, env, ok=(0, 1), source=args.source)
                        times[name].append(wall)
                        cpu[name].append(used)
                    say(f"round {round_no + 1}/{args.repeat}: "
                        + ", ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()))  # fmt: skip
    finally:
        pg.cleanup()
    rows = args.runs * args.partitions
    load = os.getloadavg()[0]
    print(f"whole process, {args.repeat} rounds, {rows:,} partition rows, load {load:.1f},"
          f" from {args.source}:")  # fmt: skip
    for name, values in times.items():
        label = " ".join(COMMANDS[name])
        print(f"  dq-monitor {label:<14} wall median {statistics.median(values):.3f}s"
              f" (min {min(values):.3f}s, max {max(values):.3f}s),"
              f" CPU median {statistics.median(cpu[name]):.3f}s")  # fmt: skip
    if args.json:
        payload = {
            "rows": rows, "load": load, "source": str(args.source),
            "wall_seconds": times, "cpu_seconds": cpu,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
