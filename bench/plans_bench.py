"""Plan review: every built-in check's statements, EXPLAIN (ANALYZE, BUFFERS), full index scans.

Usage (from the repository root, with the project's virtualenv):

    python bench/plans_bench.py [--scales ROWS,ROWS,...] [--runs N] [--partitions P]
    python bench/plans_bench.py --url URL --schema S[,S...]      # data loaded already

With --scales it starts a throwaway PostgreSQL and loads each scale with bench/checks_bench.py's
Dataset (same data, same seeded defects, the same 100 runs touched 10 minutes ago), about 35 s
per million partition rows. With --url it reads the reference tables in each --schema of that
database and changes nothing there (a 50 M load is half an hour: load once, review many times).

For each schema it builds the probes dq-monitor builds for every check in checks/registry.py
(the three consistency checks share one) and evaluates each, in each mode it has, on a
connection whose cursors record every statement with its parameters:

  first        a full sweep with nothing known and no memory (counter_writes: its baseline);
  daily        a full sweep knowing the runs `first` found, with the memory `first` left;
  incremental  (checks that have it) the runs changed since 15 minutes before the newest
               partition_progress.updated_at, by the database's clock;
  write        (checks that keep memory and are never incremental, i.e. keep a
               signature: counter_writes) as daily, but the memory's summary disagrees with one
               bucket of runs, as after a counter write: the narrowing statements run too.

Every recorded statement is then run again under EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) with
the same parameters. An Index Scan, Index Only Scan or Bitmap Index Scan node that reads (rows
returned plus rows removed, times loops) at least --full-fraction of its table's rows is a full
index scan, where a parallel sequential scan or a small lookup would serve: the script lists
each one and exits 1. Every plan and timing goes to bench/results/plans_<label>.json and a text
summary to bench/results/plans_<label>.txt (label: the partition row count, e.g. 10M).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from checks_bench import SETTLE_TIME, TOUCH_AGE, Dataset, say, server  # noqa: E402

from checks import (  # noqa: E402
    REGISTRY,
    Memory,
    MemoryUpdate,
    Mode,
    Probe,
    Window,
    build_probes,
    select_checks,
)
from config import Settings, TablesSettings  # noqa: E402
from monitor.db import connect  # noqa: E402

INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
MIN_TABLE_ROWS = 10_000  # a whole small table through its index costs nothing worth a flag


@dataclass
class Statement:
    query: str
    params: Any


class Recorder:
    """Every statement a probe sends, recorded by a cursor subclass installed on the conn."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self.on = False

    def cursor_class(self) -> type[psycopg.Cursor[Any]]:
        recorder = self

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                if recorder.on:
                    text = query.as_string(self) if isinstance(query, sql.Composable) else query
                    recorder.statements.append(Statement(str(text), params))
                return super().execute(query, params, **kwargs)

        return Recording


@dataclass
class ModeResult:
    probe: str
    mode: str
    seconds: float
    statements: list[dict[str, Any]] = field(default_factory=list)


def settings_for(schema: str) -> Settings:
    return Settings(
        tables=TablesSettings(schema_name=schema),
        settle_time=SETTLE_TIME,
        sample_limit=20,
        statement_timeout=dt.timedelta(minutes=30),
    )


def as_memory(update: MemoryUpdate) -> Memory:
    entries = dict(update.put)
    return Memory(
        summary=dict(update.summary_put),
        lookup=lambda keys: (
            entries if keys is None else {k: entries[k] for k in keys if k in entries}
        ),
    )


def disturbed(memory: Memory) -> Memory:
    """The memory as it would look after a write in one bucket: its signature disagrees."""
    summary = dict(memory.summary)
    for key in sorted(summary):
        value = summary[key]
        if isinstance(value, list) and value and isinstance(value[0], int):
            summary[key] = [value[0] + 1, *value[1:]]
            if key != "total" and "total" in summary:
                total = summary["total"]
                assert isinstance(total, list)
                summary["total"] = [int(str(total[0])) + 1, *total[1:]]
                break
    return replace(memory, summary=summary)


def modes(probe: Probe) -> list[str]:
    """The modes a probe has, in the order they run (daily and write build on first)."""
    names = ["first", "daily"]
    if all(c.incremental for c in probe.checks):
        names.append("incremental")
    # Only a check that signs every run (never incremental) has a summary a write disturbs.
    if any(c.keeps_memory and not c.incremental for c in probe.checks):
        names.append("write")
    return names


def window_for(
    mode: str, since: dt.datetime, known: frozenset[str], memory: dict[str, Memory]
) -> Window:
    if mode == "first":
        return Window(Mode.FULL)
    if mode == "incremental":
        return Window(Mode.INCREMENTAL, since=since, memory=memory)
    if mode == "write":
        memory = {n: disturbed(m) for n, m in memory.items()}
    return Window(Mode.FULL, known=known, memory=memory)


def run_modes(
    conn: psycopg.Connection[Any], rec: Recorder, probe: Probe, since: dt.datetime
) -> list[ModeResult]:
    results: list[ModeResult] = []
    known: frozenset[str] = frozenset()
    memory: dict[str, Memory] = {}
    for mode in modes(probe):
        window = window_for(mode, since, known, memory)
        rec.statements, rec.on = [], True
        clock = time.perf_counter()
        outcome = probe.evaluate(conn, window)
        seconds = time.perf_counter() - clock
        rec.on = False
        result = ModeResult("+".join(probe.names), mode, seconds)
        result.statements = [{"sql": s.query, "params": s.params} for s in rec.statements]
        results.append(result)
        if mode == "first":
            known = frozenset(f.run_key for e in outcome.values() for f in e.findings)
            memory = {n: as_memory(e.memory) for n, e in outcome.items() if e.memory is not None}
    return results


def explain(conn: psycopg.Connection[Any], statement: dict[str, Any]) -> None:
    """Add the statement's analysed plan, its timing and its full index scans (if any)."""
    text: str = statement["sql"]
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    if head not in ("SELECT", "WITH"):
        statement["explained"] = False
        return
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")
        row = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text, statement["params"]
        ).fetchone()
    assert row is not None
    (plan,) = row[0]
    statement.update(
        explained=True,
        plan=plan,
        execution_ms=plan.get("Execution Time"),
        planning_ms=plan.get("Planning Time"),
        full_index_scans=full_index_scans(conn, plan["Plan"]),
        shape=shape(plan["Plan"]),
    )


_TABLE_ROWS: dict[tuple[str, str], tuple[str, float]] = {}


def table_rows(conn: psycopg.Connection[Any], node: dict[str, Any]) -> tuple[str, float]:
    """The node's table and its row count (the plan names relations as search_path finds them)."""
    if "Relation Name" in node:
        name, query = node["Relation Name"], "SELECT c.relname, c.reltuples FROM pg_class AS c"
        where = " WHERE c.oid = to_regclass(quote_ident(%s))"
    else:  # a Bitmap Index Scan names its index only
        name, query = node["Index Name"], "SELECT t.relname, t.reltuples FROM pg_index AS i"
        query += " JOIN pg_class AS t ON t.oid = i.indrelid"
        where = " WHERE i.indexrelid = to_regclass(quote_ident(%s))"
    schema = conn.execute("SELECT current_schema()").fetchone()
    key = (str(schema[0] if schema else ""), name)
    if key not in _TABLE_ROWS:
        found = conn.execute(query + where, (name,)).fetchone()
        _TABLE_ROWS[key] = (str(found[0]), float(found[1])) if found else (name, 0.0)
    return _TABLE_ROWS[key]


def full_index_scans(conn: psycopg.Connection[Any], node: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if node["Node Type"] in INDEX_NODES:
        loops = node.get("Actual Loops", 1) or 1
        read = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        ) * loops
        table, rows = table_rows(conn, node)
        if rows >= MIN_TABLE_ROWS and read >= FULL_FRACTION[0] * rows:
            found.append(
                f"{node['Node Type']} using {node['Index Name']} ({table}): read {read:,.0f} "
                f"of {rows:,.0f} rows ({read / rows:.0%})"
            )
    for child in node.get("Plans", ()):
        found.extend(full_index_scans(conn, child))
    return found


FULL_FRACTION = [0.5]


def shape(node: dict[str, Any], depth: int = 0) -> list[str]:
    label = node["Node Type"]
    if node.get("Strategy") not in (None, "Plain"):
        label += f" ({node['Strategy']})"
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    label += f"  [rows {node.get('Actual Rows', 0) * (node.get('Actual Loops', 1) or 1):,}"
    label += f", est {node.get('Plan Rows', 0):,}, {node.get('Actual Total Time', 0):.1f} ms]"
    lines = ["  " * depth + label]
    for child in node.get("Plans", ()):
        lines.extend(shape(child, depth + 1))
    return lines


def review(url: str, schema: str) -> dict[str, Any]:
    """Every probe of `schema` in every mode, each statement explained."""
    rec = Recorder()
    settings = settings_for(schema)
    probes = build_probes(select_checks(settings, REGISTRY.names))
    with (
        connect(
            SecretStr(url), purpose="database", connect_timeout=dt.timedelta(seconds=10),
            read_only=True,
        ) as monitor,
        psycopg.connect(url, autocommit=True) as admin,
    ):  # fmt: skip
        monitor.cursor_factory = rec.cursor_class()
        admin.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        row = admin.execute(
            "SELECT (SELECT max(updated_at) FROM partition_progress) - interval '15 minutes',"
            " (SELECT count(*) FROM partition_progress), (SELECT count(*) FROM run_metadata),"
            " current_setting('server_version')"
        ).fetchone()
        assert row is not None
        since, rows, runs, version = row
        results: list[ModeResult] = []
        for probe in probes:
            say(f"  {schema}: {'+'.join(probe.names)}")
            results.extend(run_modes(monitor, rec, probe, since))
        for result in results:
            for statement in result.statements:
                explain(admin, statement)
    return {
        "schema": schema, "partition_rows": rows, "runs": runs, "server_version": version,
        "since": since.isoformat(), "full_fraction": FULL_FRACTION[0],
        "modes": [vars(r) for r in results],
    }  # fmt: skip


def summary(review_: dict[str, Any]) -> tuple[list[str], list[str]]:
    lines = [
        f"Plans of every built-in check: schema {review_['schema']}, "
        f"{review_['partition_rows']:,} partition rows, {review_['runs']:,} runs, "
        f"PostgreSQL {review_['server_version']}"
    ]
    flagged: list[str] = []
    for mode in review_["modes"]:
        explained = [s for s in mode["statements"] if s.get("explained")]
        server_ms = sum(s["execution_ms"] or 0 for s in explained)
        lines.append(
            f"- {mode['probe']} / {mode['mode']}: {mode['seconds'] * 1000:.1f} ms in Python, "
            f"{len(explained)} statements, {server_ms:.1f} ms server (EXPLAIN ANALYZE)"
        )
        for s in explained:
            lines.append(f"    {s['execution_ms']:.1f} ms: {' '.join(s['sql'].split())[:150]}")
            lines.extend("      " + line for line in s["shape"])
            for scan in s["full_index_scans"]:
                flagged.append(f"{mode['probe']} / {mode['mode']}: {scan}")
    lines.append(f"Full index scans: {len(flagged)}")
    lines.extend("  - " + f for f in flagged)
    return lines, flagged


def label(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows:,}".replace(",", "_")


def write(review_: dict[str, Any], out: Path) -> list[str]:
    lines, flagged = summary(review_)
    name = label(review_["partition_rows"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"plans_{name}.json").write_text(json.dumps(review_, indent=1, default=str) + "\n")
    (out / f"plans_{name}.txt").write_text("\n".join(lines) + "\n")
    say(f"wrote {out / f'plans_{name}.json'} and .txt")
    print("\n".join(lines), flush=True)
    return flagged


@contextmanager
def loaded(args: argparse.Namespace) -> Iterator[tuple[str, list[str]]]:
    """A throwaway server with each of --scales loaded (and touched) in its own schema."""
    with server(args) as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE dqbench")
        url = pg.url("dqbench")
        schemas = []
        with psycopg.connect(url, autocommit=True) as admin:
            row = admin.execute("SELECT date_trunc('second', now()) - interval '1 hour', now()")
            anchor, now = row.fetchone()  # type: ignore[misc]
            for rows in args.scale_rows:
                runs = max(8, rows // args.partitions)
                data = Dataset(
                    conn=admin, schema=f"scale_{runs * args.partitions}", runs=runs,
                    partitions=args.partitions, defects_per_kind=5, seed=42, anchor=anchor,
                )  # fmt: skip
                data.load()
                data.touch(100, now - TOUCH_AGE)
                data.vacuum()
                schemas.append(data.schema)
        yield url, schemas


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scales", default="1000000,10000000", help="partition rows to load")
    parser.add_argument("--partitions", type=int, default=100, help="partitions per run")
    parser.add_argument("--url", help="an already-loaded database (then --schema)")
    parser.add_argument("--schema", help="comma-separated schemas holding the reference tables")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="result folder")
    parser.add_argument(
        "--full-fraction", type=float, default=0.5,
        help="an index scan reading this fraction of its table's rows is a full index scan",
    )  # fmt: skip
    parser.add_argument("--data-dir", help="server directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the server running at the end")
    args = parser.parse_args(argv)
    args.pg_setting = []
    if (args.url is None) != (args.schema is None):
        parser.error("--url and --schema go together")
    if not 0 < args.full_fraction <= 1:
        parser.error("--full-fraction must be in (0, 1]")
    try:
        args.scale_rows = sorted({int(s) for s in args.scales.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--scales must be comma-separated row counts, not {args.scales!r}")
    if args.partitions < 3:
        parser.error("--partitions must be at least 3")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    FULL_FRACTION[0] = args.full_fraction
    flagged: list[str] = []
    if args.url:
        schemas = [s.strip() for s in args.schema.split(",") if s.strip()]
        for schema in schemas:
            flagged += write(review(args.url, schema), Path(args.out))
    else:
        with loaded(args) as (url, schemas):
            for schema in schemas:
                flagged += write(review(url, schema), Path(args.out))
    if flagged:
        say(f"{len(flagged)} full index scan(s):")
        for line in flagged:
            say(f"  {line}")
        return 1
    say("no full index scans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
