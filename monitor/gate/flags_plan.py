"""Plan partition_flags_exclusive: CHECK (NOT (completed AND failed)) on partition_progress.

Added the online way: ADD CONSTRAINT ... NOT VALID (a brief ACCESS EXCLUSIVE lock, no scan),
then VALIDATE CONSTRAINT in its own transaction (SHARE UPDATE EXCLUSIVE: reads and writes go
on while it scans). Gated on a clean flag_conflict streak; no reader evidence is needed, since
the constraint takes nothing away from any reader.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from checks import table_ref
from config import Settings, SetupError, count, format_duration
from monitor.gate.names import PARTITION_FLAGS_EXCLUSIVE
from monitor.gate.plans import PLANS

_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are truncated silently


@dataclass(frozen=True)
class ConstraintPlan:
    """What `migrate partition_flags_exclusive` would do, with the exact SQL."""

    name: ClassVar[str] = PARTITION_FLAGS_EXCLUSIVE
    table: str  # quoted and qualified, as the plan and the progress lines show it
    constraint: str
    add: sql.Composed
    validate: sql.Composed
    drop: sql.Composed

    @property
    def gating_checks(self) -> tuple[str, ...]:
        return PLANS[self.name].gating_checks

    @property
    def sql_text(self) -> str:
        return "\n".join(f"{s.as_string(None)};" for s in (self.add, self.validate))

    @property
    def drop_text(self) -> str:
        return f"{self.drop.as_string(None)};"

    @property
    def sql_checksum(self) -> str:
        return hashlib.sha256(self.sql_text.encode()).hexdigest()

    def describe(self, settings: Settings) -> str:
        gate = settings.gate
        add, validate = self.sql_text.splitlines()
        limits = (f"lock_timeout {format_duration(gate.lock_timeout)} (at most "
                  f"{count(gate.lock_retries, 'attempt')} with backoff) and statement_timeout "
                  f"{format_duration(gate.statement_timeout)}")  # fmt: skip
        steps = [
            f"Plan {self.name}, sql sha256 {self.sql_checksum}",
            f"1. re-evaluate the gate (gating checks: {', '.join(self.gating_checks)}); "
            "refuse unless it is open",
            "2. take an advisory lock so that only one apply runs at a time",
            f"3. in one transaction with {limits}, exactly:",
            f"     {add}",
            f"4. in its own transaction with {limits}, exactly:",
            f"     {validate}",
            "   if it fails (a row with both flags, a timeout), drop the NOT VALID constraint "
            "again in a transaction of its own, so nothing is left half-applied:",
            f"     {self.drop_text}",
            "5. record an audit row: plan, operator, database user, time, gate evidence hash "
            "and settings, SQL checksum",
            f"Rollback (`migrate {self.name} --rollback`) runs `{self.drop_text}`.",
            f"This was a dry run: nothing changed. Apply with: dq-monitor migrate {self.name} "
            "--apply --operator NAME",
        ]
        return "\n".join(steps)


def make_constraint_plan(settings: Settings) -> ConstraintPlan:
    """The plan for the configured partition_progress table and its flag columns."""
    ref = table_ref(settings.tables, "partition_progress")
    constraint = f"{ref.name}_flags_exclusive"[:_MAX_IDENTIFIER]
    name = sql.Identifier(constraint)
    check = sql.SQL("CHECK (NOT ({} AND {}))").format(ref.col("completed"), ref.col("failed"))
    alter = sql.SQL("ALTER TABLE {} ").format(ref.ident)
    return ConstraintPlan(
        table=ref.ident.as_string(None),
        constraint=constraint,
        add=alter + sql.SQL("ADD CONSTRAINT {} {} NOT VALID").format(name, check),
        validate=alter + sql.SQL("VALIDATE CONSTRAINT {}").format(name),
        drop=alter + sql.SQL("DROP CONSTRAINT {}").format(name),
    )


def constraint_state(conn: psycopg.Connection[Any], plan: ConstraintPlan) -> str:
    """"absent", "not_valid" or "valid". Raises SetupError when the table does not exist (a
    wrong setting, never evidence)."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL, (SELECT convalidated FROM pg_constraint"
        " WHERE conrelid = to_regclass(%s) AND conname = %s AND contype = 'c')",
        (plan.table, plan.table, plan.constraint),
    ).fetchone()
    if not row or not row[0]:
        raise SetupError(
            f"table {plan.table} does not exist (plan {plan.name}'s partition_progress); set "
            'tables.schema_name and tables.partition_progress.name (see the Configuration '
            "reference in docs/configuration.md), or run `dq-monitor doctor`"
        )
    return "absent" if row[1] is None else ("valid" if row[1] else "not_valid")


def constraint_evidence(conn: psycopg.Connection[Any], settings: Settings) -> dict[str, Any]:
    """The gate's evidence for the plan: whether the constraint exists yet (it never blocks:
    flag_conflict's streak is what gates)."""
    plan = make_constraint_plan(settings)
    state = constraint_state(conn, plan)
    reason = {
        "absent": f"{plan.table} has no constraint {plan.constraint} yet",
        "not_valid": f"{plan.constraint} exists but is NOT VALID (a failed apply left it, or it "
        f"was added by hand): `migrate {plan.name} --rollback` drops it",
        "valid": f"{plan.constraint} exists and is validated: the plan is applied",
    }[state]
    return {"status": state, "reason": reason}
