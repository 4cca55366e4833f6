"""The named migration plans: each one's SQL, the checks that gate it and its evidence.

drop_counter_columns is migration 005 (shipped SQL or a file); partition_flags_exclusive adds
the seed's CHECK (NOT (completed AND failed)) to partition_progress, the online way.

A migration 005 file is refused before anything runs when it says CASCADE (anywhere but in a
comment: function bodies and strings are code too), has a DO block or EXECUTE (dynamic SQL
hides what runs from the plan a reviewer reads), or ends or opens a transaction (the migration
is one transaction that dq-monitor commits only after verifying the catalog).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from psycopg import sql

from checks import REGISTRY, migration_005, table_ref
from config import ConfigError, Settings, count, format_duration
from monitor.gate.names import DROP_COUNTER_COLUMNS, PARTITION_FLAGS_EXCLUSIVE

# The checks whose clean history migration 005 needs (the registry's gating ones);
# gate.checks may add others, never remove one of these.
GATING_CHECKS = REGISTRY.gating


@dataclass(frozen=True)
class PlanSpec:
    """What the gate evaluates for one plan: its checks, its evidence, how reports name it."""

    name: str
    title: str  # what the plan changes: the Markdown report's heading
    goal: str  # what an open gate allows: the OPEN headline
    gating_checks: tuple[str, ...]
    evidence: tuple[str, ...]  # the kinds of catalog / statistics evidence the gate reads
    # Whether gate.checks adds to its gating checks (it was migration 005's list, and is).
    configured_checks: bool


PLANS: dict[str, PlanSpec] = {
    DROP_COUNTER_COLUMNS: PlanSpec(
        DROP_COUNTER_COLUMNS, "drop run_metadata.completed_workers and failed_workers",
        "the deprecated counters may be dropped", GATING_CHECKS,
        ("columns", "dependencies", "readers", "writers"), configured_checks=True,
    ),
    PARTITION_FLAGS_EXCLUSIVE: PlanSpec(
        PARTITION_FLAGS_EXCLUSIVE,
        "add CHECK (NOT (completed AND failed)) to partition_progress",
        "the constraint may be added", ("flag_conflict",), ("constraint",),
        configured_checks=False,
    ),
}  # fmt: skip


def plan_spec(name: str) -> PlanSpec:
    """The named plan; raises ConfigError (one line, listing the plans) for an unknown name."""
    try:
        return PLANS[name]
    except KeyError:
        raise ConfigError(f"unknown plan {name!r}; the plans are: {', '.join(PLANS)}") from None


def service_key(plan: str) -> str:
    """The service_state key the service publishes a plan's gate under ("gate" for 005, as
    before plans existed, so recorded rules keep their floor)."""
    return "gate" if plan == DROP_COUNTER_COLUMNS else f"gate:{plan}"


_TRANSACTION_CONTROL = ("begin", "start", "commit", "end", "rollback", "abort", "savepoint",
                        "release", "prepare")  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What `migrate drop_counter_columns` would do, with the exact SQL."""

    name: ClassVar[str] = DROP_COUNTER_COLUMNS
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
            f"1. re-evaluate the gate (gating checks: {', '.join(self.gating_checks)}); "
            "refuse unless it is open",
            "2. take an advisory lock so that only one apply runs at a time",
            f"3. in one transaction with lock_timeout {format_duration(gate.lock_timeout)} "
            f"(at most {count(gate.lock_retries, 'attempt')} with backoff) and statement_timeout "
            f"{format_duration(gate.statement_timeout)}:",
            f"   LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE;",
            "   refuse if a catalog object now uses the columns (created while waiting);",
            f"   archive run_id, {', '.join(self.columns)} into the state store and verify the "
            "row count and checksum;",
            "   then the migration SQL, exactly:",
            *(f"     {line}" for line in self.sql_text.strip().splitlines()),
            "   then verify that the table's catalog lost the two columns and nothing else "
            "(columns, indexes, constraints, triggers, policies, rules, dependent objects); "
            "otherwise roll back",
            "4. record an audit row: operator, database user, time, gate evidence hash and "
            "settings, SQL checksum, archive size and checksum",
            "Rollback (`migrate --rollback`) re-adds the columns with their original type, "
            "default and NOT NULL, and restores the archived values.",
            "This was a dry run: nothing changed. Apply with: dq-monitor migrate --apply "
            "--operator NAME",
        ]
        return "\n".join(steps)


def make_plan(settings: Settings, sql_file: str | None) -> Plan:
    """Read the migration SQL (the shipped 005 unless a file is given).

    Raises ConfigError when the file cannot be read or is refused (see the module docstring).
    """
    if sql_file is None:
        text, source = migration_005(), "the shipped 005_remove_counter_columns.sql"
    else:
        try:
            text, source = Path(sql_file).read_text(encoding="utf-8"), sql_file
        except OSError as exc:
            raise ConfigError(f"--sql {sql_file}: cannot read it: {exc.strerror}") from None
    refuse_unsafe_sql(text, source)
    ref = table_ref(settings.tables, "run_metadata")
    table = sql.Identifier(ref.schema, ref.name).as_string(None)
    columns = [ref.columns["completed_workers"], ref.columns["failed_workers"]]
    checksum = hashlib.sha256(text.encode()).hexdigest()
    return Plan(text, checksum, table, columns, source)


def refuse_unsafe_sql(text: str, source: str) -> None:
    """Raises ConfigError when the migration SQL may not run guarded (module docstring)."""
    code = sql_code(text)
    bare = sql_code(text, keep_quoted=True)
    if not code.strip(" ;\n\t\r"):
        raise ConfigError(f"{source} contains no SQL")
    for statement in code.split(";"):
        words = statement.split(None, 1)
        first = words[0].lower() if words else ""
        if first == "do":
            raise ConfigError(f"{source} has a DO block; dynamic SQL hides what runs from the "
                              "plan: write the statements out")  # fmt: skip
        if first in _TRANSACTION_CONTROL:
            raise ConfigError(f"{source} has {words[0].upper()}; the migration runs in one "
                              "transaction that dq-monitor commits after verifying it")  # fmt: skip
    if re.search(r"\bcascade\b", bare, re.IGNORECASE):
        raise ConfigError(f"{source} uses CASCADE (function bodies and strings count too); the "
                          "guarded migration drops without it")  # fmt: skip
    if re.search(r"\bexecute\b", bare, re.IGNORECASE):
        raise ConfigError(f"{source} uses EXECUTE (dynamic SQL hides what runs from the plan); "
                          "write the statements out")  # fmt: skip


def sql_code(text: str, *, keep_quoted: bool = False) -> str:
    """The SQL with comments blanked out, and string literals, quoted identifiers and
    dollar-quoted bodies too unless `keep_quoted`.

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
            start, quote, i = i, text[i], i + 1
            while i < n and not (text[i] == quote and text[i + 1 : i + 2] != quote):
                i += 2 if text[i] == quote else 1
            i += 1
            out.append(text[start:i] if keep_quoted else " ")
        elif text[i] == "$" and (tag := re.match(r"\$[A-Za-z_0-9]*\$", text[i:])):
            start = i
            end = text.find(tag.group(0), i + len(tag.group(0)))
            i = n if end < 0 else end + len(tag.group(0))
            out.append(text[start:i] if keep_quoted else " ")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
