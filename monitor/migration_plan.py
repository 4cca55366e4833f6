"""Migration 005's plan: its SQL (shipped or a file), the checks that gate it, what is refused."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from checks import migration_005, table_ref
from config import ConfigError, Settings, format_duration

# The checks whose clean history migration 005 needs; gate.checks may add others, never
# remove one of these.
GATING_CHECKS = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict", "counter_writes")


@dataclass(frozen=True)
class Plan:
    """What `migrate` would do, with the exact SQL."""

    sql_text: str
    sql_checksum: str
    table: str
    columns: list[str]
    source: str
    gating_checks: tuple[str, ...] = GATING_CHECKS

    def describe(self, settings: Settings) -> str:
        gate = settings.gate
        steps = [
            f"Plan for migration 005 ({self.source}), sql sha256 {self.sql_checksum}",
            "1. re-evaluate the gate; refuse unless it is open",
            "2. take an advisory lock so that only one apply runs at a time",
            f"3. in one transaction with lock_timeout {format_duration(gate.lock_timeout)} "
            f"(at most {gate.lock_retries} attempts with backoff):",
            f"   LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE;",
            f"   archive run_id, {', '.join(self.columns)} into the state store and verify the "
            "row count and checksum;",
            "   then the migration SQL, exactly:",
            *(f"     {line}" for line in self.sql_text.strip().splitlines()),
            "4. record an audit row: operator, database user, time, gate evidence hash, "
            "SQL checksum, archive size and checksum",
            "Rollback (`migrate --rollback`) re-adds the columns with their original type, "
            "default and NOT NULL, and restores the archived values.",
            "This was a dry run: nothing changed. Apply with: dq-monitor migrate --apply "
            "--operator NAME",
        ]
        return "\n".join(steps)


def make_plan(settings: Settings, sql_file: str | None) -> Plan:
    """Read the migration SQL (the shipped 005 unless a file is given). Raises ConfigError."""
    if sql_file is None:
        text, source = migration_005(), "the shipped 005_remove_counter_columns.sql"
    else:
        try:
            text, source = Path(sql_file).read_text(encoding="utf-8"), sql_file
        except OSError as exc:
            raise ConfigError(f"--sql {sql_file}: cannot read it: {exc.strerror}") from None
    body = sql_code(text)
    if re.search(r"\bcascade\b", body, re.IGNORECASE):
        raise ConfigError(f"{source} uses CASCADE; the guarded migration drops without it")
    if not body.strip():
        raise ConfigError(f"{source} contains no SQL")
    ref = table_ref(settings.tables, "run_metadata")
    table = sql.Identifier(ref.schema, ref.name).as_string(None)
    columns = [ref.columns["completed_workers"], ref.columns["failed_workers"]]
    checksum = hashlib.sha256(text.encode()).hexdigest()
    return Plan(text, checksum, table, columns, source)


def sql_code(text: str) -> str:
    """The SQL with comments, string literals and quoted identifiers blanked out.

    So a keyword check sees only code: `'--'` inside a string does not hide what follows,
    and `/* cascade */` is not mistaken for CASCADE.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        two = text[i : i + 2]
        if two == "--":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif two == "/*":
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif text[i] in "'\"":
            quote, i = text[i], i + 1
            while i < n and not (text[i] == quote and text[i + 1 : i + 2] != quote):
                i += 2 if text[i] == quote else 1
            i += 1
            out.append(" ")
        elif text[i] == "$" and (tag := re.match(r"\$[A-Za-z_0-9]*\$", text[i:])):
            end = text.find(tag.group(0), i + len(tag.group(0)))
            i = n if end < 0 else end + len(tag.group(0))
            out.append(" ")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
