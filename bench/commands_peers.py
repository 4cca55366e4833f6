"""The five checks as the peers express them (SodaCL, query-exporter, psql), and their findings.

bench/commands_bench.py writes these files, runs the tools and reads back what each found.

Every peer reads the same obvious SQL, one statement per check, unqualified table names (the
search_path picks the scale's schema) and one parameter, the date the counters stopped
being maintained (a stateless tool cannot remember the counters, so "a counter write" is a
run started after the fix with non-zero counters). Counts are what dq-monitor counts as
violations: runs for dashboard_mismatch and counter_writes, partitions for the other three.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from checks_bench import THREE_QUERIES

CHECKS = (
    "dashboard_mismatch",
    "missing_worker_runs",
    "flag_conflict",
    "stale_partitions",
    "counter_writes",
)

STALE_AFTER = "30 minutes"  # checks.stale_partitions.threshold's default

# {fix} is the place of the one parameter; each tool spells it its own way.
OBVIOUS_SQL = {
    # The consistency checks as checks_bench times them, one straightforward query each.
    **THREE_QUERIES,
    "stale_partitions": (
        "SELECT run_id, partition_id, updated_at FROM partition_progress"
        f" WHERE NOT completed AND NOT failed AND updated_at < now() - interval '{STALE_AFTER}'"
    ),
    "counter_writes": (
        "SELECT run_id, completed_workers, failed_workers FROM run_metadata"
        " WHERE started_at >= {fix} AND (completed_workers <> 0 OR failed_workers <> 0)"
    ),
}

# SodaCL: each check sits under the table it is about.
_SODA_TABLE = {
    "dashboard_mismatch": "run_metadata",
    "missing_worker_runs": "partition_progress",
    "flag_conflict": "partition_progress",
    "stale_partitions": "partition_progress",
    "counter_writes": "run_metadata",
}


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def soda_checks() -> str:
    """checks.yml: one failed-rows check per check (a variable `fix` holds the fix date)."""
    out = []
    for table in dict.fromkeys(_SODA_TABLE.values()):
        out.append(f"checks for {table}:")
        for name in CHECKS:
            if _SODA_TABLE[name] != table:
                continue
            query = OBVIOUS_SQL[name].replace("{fix}", "'${fix}'::timestamptz")
            out += [
                "  - failed rows:",
                f"      name: {name}",
                "      fail query: |",
                _indent(query, 8),
            ]
    return "\n".join(out) + "\n"


def soda_configuration(host: str, port: int, user: str, database: str, schema: str) -> str:
    """configuration.yml of the data source `ds`."""
    return (
        "data_source ds:\n"
        "  type: postgres\n"
        f"  host: {host}\n"
        f"  port: {port}\n"
        f"  username: {user}\n"
        "  password: ''\n"
        f"  database: {database}\n"
        f"  schema: {schema}\n"
    )


def soda_findings(scan_results: dict[str, Any]) -> dict[str, int | None]:
    """Failed rows per check from `soda scan -srf`'s JSON (None: the check did not evaluate)."""
    found: dict[str, int | None] = dict.fromkeys(CHECKS)
    for check in scan_results.get("checks", []):
        name = check.get("name")
        if name in found:
            value = (check.get("diagnostics") or {}).get("value")
            found[name] = None if value is None else int(value)
    return found


def query_exporter_config(dsn: str, fix: str) -> str:
    """config.yaml: one aperiodic query per check (run at every scrape), one gauge."""
    lines = [
        "databases:",
        "  db:",
        f"    dsn: {json.dumps(dsn)}",
        "metrics:",
        "  dq_violations:",
        "    type: gauge",
        "    description: rows each check found",
        "    labels: [check]",
        "queries:",
    ]
    for name in CHECKS:
        query = OBVIOUS_SQL[name].replace("{fix}", "CAST(:fix AS timestamptz)")
        lines += [
            f"  {name}:",
            "    databases: [db]",
            "    metrics: [dq_violations]",
            "    sql: |",
            _indent(f"SELECT '{name}' AS check, count(*) AS dq_violations FROM ({query}) AS q", 6),
        ]
        if "{fix}" in OBVIOUS_SQL[name]:
            lines += ["    parameters:", f"      - fix: {json.dumps(fix)}"]
    return "\n".join(lines) + "\n"


_GAUGE = re.compile(r'^dq_violations\{(?:[^}]*,)?check="(\w+)"[^}]*\}\s+([0-9.eE+-]+)$', re.M)


def query_exporter_findings(metrics_text: str) -> dict[str, int | None]:
    found: dict[str, int | None] = dict.fromkeys(CHECKS)
    for name, value in _GAUGE.findall(metrics_text):
        if name in found:
            found[name] = int(float(value))
    return found


def psql_script() -> str:
    """The obvious SQL for `psql -X -A -t -v fix=... -f`: a marker line, then the rows."""
    out = []
    for name in CHECKS:
        out.append(f"\\echo '#check {name}'")
        out.append(OBVIOUS_SQL[name].replace("{fix}", ":'fix'::timestamptz") + ";")
    return "\n".join(out) + "\n"


def psql_findings(output: str) -> dict[str, int | None]:
    """Rows printed under each marker line of psql_script()'s output."""
    found: dict[str, int | None] = dict.fromkeys(CHECKS)
    current: str | None = None
    for line in output.splitlines():
        if line.startswith("#check "):
            current = line.split()[1]
            found[current] = 0
        elif current is not None and line.strip():
            found[current] = (found[current] or 0) + 1
    return found


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
