"""What every plan's guarded migration shares: owner session, gate, bounded lock waits, audit."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import errors as pg

from alerts import Clock
from checks import describe_pg_error
from config import GateError, Settings, count, format_duration
from monitor.db import ConnectionSource, Target, connect, translate
from monitor.gate.gatekeeper import Gatekeeper
from monitor.gate.names import DROP_COUNTER_COLUMNS
from monitor.gate.standbys import gated_database
from monitor.gate.verdict import Decision, GateReport
from monitor.store import AuditStart, MigrationAudit, StateStore

Progress = Callable[[str], None]
T = TypeVar("T")


class GuardedPlan(Protocol):
    """What the shared machinery needs to know about a plan."""

    @property
    def name(self) -> str: ...
    @property
    def table(self) -> str: ...  # the quoted, qualified table it alters
    @property
    def sql_text(self) -> str: ...
    @property
    def sql_checksum(self) -> str: ...
    @property
    def gating_checks(self) -> tuple[str, ...]: ...


class GuardedMigration:
    """The audit and the archive go to `store`; the gate is re-evaluated with `source` (the
    monitored database, read-only); the migration itself runs on the owner's own session."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: ConnectionSource,
        clock: Clock,
        plan: GuardedPlan,
        *,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.clock = clock
        self.audit = MigrationAudit(store)
        self.guarded = plan
        self.say = progress

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        """The owner's session; a psycopg error anywhere in it leaves translated."""
        database = gated_database(self.settings)
        assert database is not None  # App.open refused to start without one
        url = database.url
        target = Target(url, "database", "DQ_DATABASE_URL")
        try:
            with connect(url, purpose="database",
                         connect_timeout=self.settings.connect_timeout) as conn:  # fmt: skip
                yield conn
        except psycopg.Error as exc:
            raise translate(exc, target, "migrating") from exc

    def _exclusive(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
            (f"dq-monitor-migrate:{self.guarded.table}",),
        ).fetchone()
        if not row or not row[0]:
            raise GateError("refused: another `dq-monitor migrate` is running on this database")

    def _open_gate(self) -> GateReport:
        """The plan's gate report, re-evaluated now; raises GateError unless it is open."""
        plan = self.guarded
        report = Gatekeeper(
            self.settings, self.store, self.source, self.clock, plan.gating_checks,
            plan=plan.name,
        ).evaluate()  # fmt: skip
        if report.warning:
            self.say(report.warning)
        if report.decision is not Decision.OPEN:
            # The headline's named list, as `dq-monitor gate` prints it.
            reasons = report.headline().partition(": ")[2]
            named = "" if plan.name == DROP_COUNTER_COLUMNS else f" {plan.name}"
            gate = f"dq-monitor gate{named}"
            raise GateError(f"refused: the gate is {report.decision.value} ({reasons}); "
                            f"run `{gate}` for the evidence")  # fmt: skip
        self.say(f"gate: open (evidence hash {report.evidence_hash()})")
        return report

    def _attempts(
        self, work: Callable[[], T], *, failed: str = "migration failed, nothing changed"
    ) -> T:
        """Run `work` (one transaction) until it gets its locks, at most gate.lock_retries
        times with backoff; any other database error raises GateError(`failed`: why)."""
        gate = self.settings.gate
        table = self.guarded.table
        for attempt in range(1, gate.lock_retries + 1):
            self.say(f"locking {table} (attempt {attempt}/{gate.lock_retries}, "
                     f"lock_timeout {format_duration(gate.lock_timeout)})")  # fmt: skip
            try:
                return work()
            except pg.LockNotAvailable:
                if attempt == gate.lock_retries:
                    break
                wait = min(30.0, 0.5 * 2**attempt)
                self.say(f"the table is busy; retrying in {wait:.1f}s")
                self.clock.sleep(wait)
            except psycopg.Error as exc:
                raise GateError(f"{failed}: {describe_pg_error(exc)}") from exc
        raise GateError(
            f"gave up: could not lock {table} within "
            f"{format_duration(gate.lock_timeout)} in {count(gate.lock_retries, 'attempt')}; "
            + ("nothing changed. " if failed.endswith("nothing changed") else "")
            + "Retry when the table is quieter."
        )

    def _set_timeouts(self, conn: psycopg.Connection[Any]) -> None:
        """lock_timeout and statement_timeout for the rest of the current transaction."""
        # In whole milliseconds, rounded up: 0 would turn the timeout off.
        gate = self.settings.gate
        timeout = str(max(1, math.ceil(gate.lock_timeout.total_seconds() * 1000)))
        statement = str(max(1, math.ceil(gate.statement_timeout.total_seconds() * 1000)))
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true),"
            " set_config('statement_timeout', %s, true)",
            (timeout, statement),
        )

    def _audit_start(self, conn: psycopg.Connection[Any], action: str, operator: str,
                     report: GateReport | None, columns: list[dict[str, Any]],
                     *, sql_text: str | None = None) -> int:  # fmt: skip
        user = conn.execute("SELECT current_user").fetchone()
        text = self.guarded.sql_text if sql_text is None else sql_text
        return self.audit.start(AuditStart(
            action=action, operator=operator, database_user=user[0] if user else "?",
            gate_evidence_hash=report.evidence_hash() if report else None,
            gate_settings=report.settings if report else None,
            sql_checksum=self.guarded.sql_checksum if sql_text is None
            else hashlib.sha256(text.encode()).hexdigest(),
            sql_text=text, columns=columns, plan=self.guarded.name,
        ))  # fmt: skip

    def _audit_finish(self, audit: int, status: str, *, rows: int | None = None,
                      checksum: str | None = None, error: str | None = None) -> None:  # fmt: skip
        self.audit.finish(audit, status, rows=rows, checksum=checksum, error=error)
