"""counter_writes with many remembered runs: the baseline, then cycles that change a few runs."""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg

import checks  # noqa: F401 - registers the built-in checks before settings load
from alerts import SystemClock
from checks import reference_schema
from config import load_settings
from monitor.app import App
from monitor.demo.embedded import EmbeddedPostgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--changed", type=int, default=10, help="runs written per cycle")
    args = parser.parse_args()
    server = EmbeddedPostgres()
    server.init()
    server.start()
    try:
        url = server.url()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(reference_schema())  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO run_metadata (run_id, started_at, completed_workers, failed_workers)"
                " SELECT 'run' || g, now() - interval '1 day', g %% 50 + 1, g %% 7"
                " FROM generate_series(1, %s) AS g",
                (args.runs,),
            )
            conn.execute("VACUUM ANALYZE run_metadata")
        os.environ["DQ_DATABASE_URL"] = url
        app = App.open(load_settings(), clock=SystemClock(), alerts=False)
        try:
            started = time.perf_counter()
            (baseline,) = app.runner.run(["counter_writes"])
            print(
                f"baseline of {args.runs} runs: {time.perf_counter() - started:.3f}s "
                f"({baseline.note})"
            )
            times = []
            with psycopg.connect(url, autocommit=True) as conn:
                for cycle in range(args.cycles):
                    conn.execute(
                        "UPDATE run_metadata SET failed_workers = failed_workers + 1"
                        " WHERE run_id = ANY(%s)",
                        ([f"run{cycle * args.changed + i + 1}" for i in range(args.changed)],),
                    )
                    started = time.perf_counter()
                    (result,) = app.runner.run(["counter_writes"])
                    times.append(time.perf_counter() - started)
            print(
                f"cycle ({args.changed} runs changed, {args.runs} remembered): median "
                f"{statistics.median(times):.3f}s, min {min(times):.3f}s, max {max(times):.3f}s"
                f" over {args.cycles}; last found {result.violations}"
            )
        finally:
            app.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
