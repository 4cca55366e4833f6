"""Full sweeps in one statement against sweeps in ranges of runs (sweep_chunk_rows).

Loads checks_bench's reference data at each scale into an embedded PostgreSQL 18 and times,
in interleaved rounds, the first full sweep (nothing known, every run screened) and the daily
full sweep (the known runs judged, the rest proven clean by signature), each with one range
and with ranges of --chunk partition rows; both must report the same findings. Prints the
plan of one range's screen and signature statements at the smallest scale with
--explain-chunk rows per range, so a range is seen to read through the index, not the
whole table.

    python bench/ranges_bench.py --scales 1000000,10000000 --chunk 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checks_bench import CHECKS, SETTLE_TIME, Dataset, plan_shape, say, server
from checks import Mode, Window, build_probes, select_checks
from checks.consistency import ConsistencyProbe
from checks.premature_consolidation import PrematureConsolidation
from checks.ranges import plan_ranges
from checks.snapshot import snapshot
from checks.stale_partitions import StalePartitions
from config import Settings, TablesSettings
from monitor.db import connect


def settings_for(schema: str, chunk_rows: int) -> Settings:
    return Settings(
        tables=TablesSettings(schema_name=schema), settle_time=SETTLE_TIME, sample_limit=20,
        statement_timeout=dt.timedelta(seconds=30), sweep_chunk_rows=chunk_rows,
    )  # fmt: skip


def probe(schema: str, chunk_rows: int) -> ConsistencyProbe:
    (made,) = build_probes(select_checks(settings_for(schema, chunk_rows), CHECKS))
    assert isinstance(made, ConsistencyProbe)
    return made


def single_checks(schema: str, chunk_rows: int) -> tuple[StalePartitions, PrematureConsolidation]:
    settings = settings_for(schema, chunk_rows)
    stale, premature = select_checks(settings, ("stale_partitions", "premature_consolidation"))
    assert isinstance(stale, StalePartitions)
    assert isinstance(premature, PrematureConsolidation)
    return stale, premature


def explain(conn: psycopg.Connection[Any], schema: str, chunk_rows: int) -> dict[str, Any]:
    p = probe(schema, chunk_rows)
    with snapshot(conn, dt.timedelta(minutes=1)) as snap:
        ranges = plan_ranges(snap, p.rm, (p.pp, p.wr), chunk_rows)
        middle = ranges[len(ranges) // 2]
        params = p._params(snap.now, None) | middle.params()
        integer = p._integer_partition_ids(snap)
        cur = snap.cursor.connection
        stale, premature = single_checks(schema, chunk_rows)
        terminal = list(premature.env.tables.run_metadata.terminal_statuses)
        return {
            "ranges": len(ranges),
            "screen": plan_shape(cur, p.screen_sql(integer, bounds=middle), params),
            "signature": plan_shape(cur, p.signature_sql(integer, focused=False, bounds=middle),
                                    params),
            "stale_partitions": plan_shape(
                cur, stale.stale_sql(incremental=False, bounds=middle),
                {"before": snap.now, "limit": 20, "runs": None} | middle.params()),
            "premature_consolidation": plan_shape(
                cur, premature.premature_sql(incremental=False, bounds=middle),
                {"terminal": terminal, "runs": None} | middle.params()),
        }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scales", default="1000000,10000000")
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=1_000_000, help="rows per range")
    parser.add_argument("--explain-chunk", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    args.pg_setting, args.keep = [], False
    results: dict[str, Any] = {"chunk_rows": args.chunk, "scales": {}}
    with server(args) as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dqbench")
        url = pg.url("dqbench")
        with (
            psycopg.connect(url, autocommit=True) as admin,
            connect(SecretStr(url), purpose="database", connect_timeout=dt.timedelta(seconds=10),
                    read_only=True) as monitor,
        ):  # fmt: skip
            anchor = admin.execute("SELECT date_trunc('second', now()) - interval '1 hour'")
            base = anchor.fetchone()[0]  # type: ignore[index]
            schemas = []
            for rows in sorted(int(s) for s in args.scales.split(",")):
                runs = rows // args.partitions
                schema = f"scale_{rows}"
                say(f"loading {rows:,} partition rows ({runs:,} runs) into {schema}")
                data = Dataset(conn=admin, schema=schema, runs=runs, partitions=args.partitions,
                               defects_per_kind=5, seed=42, anchor=base)  # fmt: skip
                data.load()
                schemas.append(schema)
            plans = explain(monitor, schemas[0], args.explain_chunk)
            say(f"{schemas[0]}, {plans['ranges']} ranges of {args.explain_chunk:,} rows; "
                "the middle range's plans:")
            for what, shape in plans.items():
                if what != "ranges":
                    say(f"{what}:\n  " + "\n  ".join(shape))
            results["plans"] = plans
            times: dict[str, dict[str, list[float]]] = {s: {} for s in schemas}
            found: dict[str, dict[str, Any]] = {s: {} for s in schemas}
            known: dict[str, frozenset[str] | None] = {}
            for k in range(args.repeat + 1):
                for schema in schemas:
                    for variant, chunk in (("one", 10**12), ("ranges", args.chunk)):
                        p = probe(schema, chunk)
                        for sweep in ("first", "daily"):
                            window_known = None if sweep == "first" else known[schema]
                            clock = time.perf_counter()
                            ev = p.evaluate(monitor, Window(Mode.FULL, known=window_known))
                            took = time.perf_counter() - clock
                            if sweep == "first":
                                known[schema] = frozenset(
                                    f.run_key for e in ev.values() for f in e.findings
                                )
                            counts = {n: sorted(f.run_key for f in e.findings)
                                      for n, e in ev.items()}  # fmt: skip
                            key = f"{sweep}/{variant}"
                            if found[schema].setdefault(sweep, counts) != counts:
                                raise SystemExit(f"{schema} {key}: findings differ")
                            if k:
                                times[schema].setdefault(key, []).append(took)
                say(f"round {k}/{args.repeat} done" if k else "warm-up done")
            for schema in schemas:
                med = {key: statistics.median(v) for key, v in times[schema].items()}
                spread = {key: [min(v), max(v)] for key, v in times[schema].items()}
                results["scales"][schema] = {"median_seconds": med, "range_seconds": spread}
                say(f"{schema}: " + ", ".join(f"{k} {v:.3f}s" for k, v in med.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
