"""Plan partition_flags_exclusive, guarded: gate re-checked, ADD ... NOT VALID, VALIDATE, audit.

Each of the two steps is its own transaction under lock_timeout and statement_timeout, retried
a bounded number of times when its lock is not granted. When VALIDATE fails (a row with both
flags, a timeout, no lock), the NOT VALID constraint is dropped again, so a failed apply
leaves nothing behind; if even that drop fails, the error says what is left and how to clean it.
"""

from __future__ import annotations

from typing import Any

import psycopg

from alerts import Clock
from config import GateError, Settings
from monitor.db import ConnectionSource
from monitor.gate.flags_plan import ConstraintPlan, constraint_state
from monitor.gate.guarded import GuardedMigration, Progress
from monitor.store import StateStore


class ConstraintMigrator(GuardedMigration):
    """Applies or rolls back partition_flags_exclusive on the monitored database."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: ConnectionSource,
        clock: Clock,
        plan: ConstraintPlan,
        *,
        progress: Progress,
    ) -> None:
        super().__init__(settings, store, source, clock, plan, progress=progress)
        self.plan = plan

    def apply(self, operator: str) -> int:
        """Add and validate the constraint; returns the audit id. Raises GateError when
        refused or when it failed (then nothing is left of it, unless the error says so)."""
        plan = self.plan
        with self._connect() as conn:
            self._exclusive(conn)
            state = constraint_state(conn, plan)
            if state == "valid":
                raise GateError(f"refused: {plan.constraint} already exists and is validated "
                                "(nothing to apply)")  # fmt: skip
            if state == "not_valid":
                raise GateError(f"refused: {plan.constraint} exists but is NOT VALID (left by "
                                f"hand or by an interrupted apply); `dq-monitor migrate "
                                f"{plan.name} --rollback` drops it, then apply again")  # fmt: skip
            report = self._open_gate()
            definition = [{"constraint": plan.constraint, "table": plan.table}]
            audit = self._audit_start(conn, "apply", operator, report, definition)
            try:
                self._attempts(lambda: self._step(conn, plan.add))
                self.say(f"added {plan.constraint} NOT VALID; validating")
                self._validate(conn)
            except Exception as exc:
                self._audit_finish(audit, "failed", error=str(exc))
                raise
            self._audit_finish(audit, "applied")
            self.say(f"applied: {plan.constraint} added and validated; audit #{audit}")
            return audit

    def rollback(self, operator: str) -> int:
        """Drop the constraint (validated or not); returns the audit id."""
        plan = self.plan
        with self._connect() as conn:
            self._exclusive(conn)
            if constraint_state(conn, plan) == "absent":
                raise GateError(f"refused: {plan.table} has no constraint {plan.constraint}; "
                                "there is nothing to roll back")  # fmt: skip
            audit = self._audit_start(conn, "rollback", operator, None,
                                      [{"constraint": plan.constraint, "table": plan.table}],
                                      sql_text=plan.drop_text)  # fmt: skip
            try:
                self._attempts(lambda: self._step(conn, plan.drop))
            except Exception as exc:
                self._audit_finish(audit, "failed", error=str(exc))
                raise
            self._audit_finish(audit, "applied")
            self.say(f"rolled back: dropped {plan.constraint}; audit #{audit}")
            return audit

    def _step(self, conn: psycopg.Connection[Any], statement: Any) -> None:
        with conn.transaction():
            self._set_timeouts(conn)
            conn.execute(statement)

    def _validate(self, conn: psycopg.Connection[Any]) -> None:
        """VALIDATE; on failure drop the NOT VALID constraint again and raise GateError."""
        plan = self.plan
        try:
            self._attempts(lambda: self._step(conn, plan.validate), failed="VALIDATE failed")
        except GateError as exc:
            why = str(exc)
            try:
                self._attempts(lambda: self._step(conn, plan.drop),
                               failed="dropping the NOT VALID constraint failed")  # fmt: skip
            except GateError as cleanup:
                raise GateError(
                    f"{why}; then {cleanup}: {plan.constraint} is left NOT VALID on "
                    f"{plan.table} (new rows are checked, old ones are not); drop it with "
                    f"`dq-monitor migrate {plan.name} --rollback --operator NAME`"
                ) from exc
            raise GateError(f"{why}; the NOT VALID constraint was dropped again: nothing "
                            "changed") from exc
        self.say(f"validated {plan.constraint}: every row has at most one of the two flags")
