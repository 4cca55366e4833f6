"""One pass of the pipeline: config -> checks (one snapshot each) -> state store -> results."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from alerts import Clock
from checks import (
    Check,
    CheckResult,
    Evaluation,
    Memory,
    Mode,
    Probe,
    Window,
    build_probes,
    select_checks,
)
from config import DatabaseUnavailable, DqError, Settings, StoreError
from monitor.db.connections import ConnectionSource
from monitor.store.alert_state import AlertBook
from monitor.store.state_store import StateStore

log = logging.getLogger(__name__)


class Runner:
    """Runs checks against the monitored database and records each run in the state store."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: ConnectionSource,
        clock: Clock,
        alerts: AlertBook | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store
        self.source = source
        self.alerts = alerts
        self._stopping = threading.Event()

    def run(
        self, names: Sequence[str] = (), *, full: bool = False, trigger: str = "manual"
    ) -> list[CheckResult]:
        """Run the enabled (or the named) checks once; every outcome is recorded and returned.

        Raises ConfigError for an unknown check name, StoreError/StoreUnavailable when the
        state store fails. A check that cannot be evaluated is a recorded error result.
        """
        checks = select_checks(self.settings, names)
        results: list[CheckResult] = []
        down: DqError | None = None
        for probe in build_probes(checks):
            # Once the monitored database cannot be reached, every later probe of this pass
            # would wait connect_timeout (longer, if it stopped answering) to learn the same:
            # they are recorded with the same error instead. One problem, one line.
            done = self.run_probe(probe, full=full, trigger=trigger, known_down=down)
            results.extend(done)
            lost = [r.error for r in done if r.extra.get("error_kind") == "unavailable"]
            if down is None and lost and lost[0]:
                down = DatabaseUnavailable(lost[0])
        order = {c.name: i for i, c in enumerate(checks)}
        return sorted(results, key=lambda r: order[r.check])

    def run_probe(
        self, probe: Probe, *, full: bool, trigger: str, known_down: DqError | None = None
    ) -> list[CheckResult]:
        """Evaluate one probe in its own snapshot and record each of its checks.

        `known_down` is recorded as the outcome without asking the database. A probe
        cancelled by stop() is not recorded: a deploy's restart is not a failure.
        """
        if self._stopping.is_set():
            return []
        window = self._window(probe, full)
        started = self.clock.now()
        clock = self.clock.monotonic()
        outcome = known_down or self._evaluate(probe, window)
        if outcome is None:
            return []
        duration = self.clock.monotonic() - clock
        finished = self.clock.now()
        self._publish_database_state(outcome, finished)
        return [
            self.store.record(
                check,
                outcome if isinstance(outcome, DqError) else outcome[check.name],
                started_at=started,
                finished_at=finished,
                duration=duration,
                requested_mode=window.mode,
                trigger=trigger,
                after=self._alert_hook(check),
            )
            for check in probe.checks
        ]

    def _evaluate(self, probe: Probe, window: Window) -> dict[str, Evaluation] | DqError | None:
        """The probe's evaluations or the error that stopped it; None when stop() cancelled it."""
        who = ", ".join(f'"{name}"' for name in probe.names)
        try:
            with self.source.connection(f"running check {who}") as conn:
                if self._stopping.is_set():
                    return None
                return probe.evaluate(conn, window)
        except DqError as exc:
            if self._stopping.is_set():
                log.info("checks %s cancelled by shutdown; not recorded", ", ".join(probe.names))
                return None
            log.warning("%s", exc)
            return exc

    def _alert_hook(
        self, check: Check
    ) -> Callable[[psycopg.Connection[Any], CheckResult], object] | None:
        book = self.alerts
        if book is None:
            return None
        return lambda conn, result: book.apply(conn, check, result)

    def stop(self) -> None:
        """Cancel running queries and any started later (never blocks); the results of
        cancelled probes are dropped."""
        self._stopping.set()
        self.source.cancel_all()

    def _publish_database_state(
        self, outcome: dict[str, Evaluation] | DqError, at: dt.datetime
    ) -> None:
        up = not isinstance(outcome, DatabaseUnavailable)
        try:
            self.store.set_service_state("database", {"up": up, "at": at.isoformat()})
        except StoreError as exc:
            log.warning("%s", exc)

    def _window(self, probe: Probe, full: bool) -> Window:
        checks = probe.checks
        memory: dict[str, Memory] = {}
        for check in checks:
            if check.keeps_memory and (remembered := self.store.memory(check)) is not None:
                memory[check.name] = remembered
        if full or not all(c.incremental for c in checks):
            return self._full_window(probe, memory)
        starts = [self.store.window_start(c) for c in checks]
        if any(s is None for s in starts):
            return self._full_window(probe, memory)
        since = min(s for s in starts if s is not None) - self.settings.incremental_overlap
        return Window(Mode.INCREMENTAL, since=since, memory=memory)

    def _full_window(self, probe: Probe, memory: dict[str, Memory]) -> Window:
        known = self.store.known_runs(probe.related)
        return Window(Mode.FULL, known=known, memory=memory)
