"""One pass of the pipeline: config -> checks (one snapshot each) -> state store -> results."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from checks import (
    Check,
    CheckResult,
    Evaluation,
    Mode,
    Probe,
    Window,
    build_probes,
    select_checks,
)
from checks.counter_writes import CounterWrites
from config import DatabaseUnavailable, DqError, Settings

from .store import StateStore

log = logging.getLogger(__name__)

Connector = Callable[[], psycopg.Connection[Any]]


class Runner:
    """Runs checks against the monitored database and records each run in the state store."""

    def __init__(self, settings: Settings, store: StateStore, connect: Connector) -> None:
        self.settings = settings
        self.store = store
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(
        self, names: Sequence[str] = (), *, full: bool = False, trigger: str = "manual"
    ) -> list[CheckResult]:
        """Run the enabled (or the named) checks once; every outcome is recorded and returned.

        Raises ConfigError for an unknown check name, StoreError/StoreUnavailable when the
        state store fails. A check that cannot be evaluated is a recorded error result.
        """
        checks = select_checks(self.settings, names)
        results: list[CheckResult] = []
        for probe in build_probes(checks):
            results.extend(self.run_probe(probe, full=full, trigger=trigger))
        order = {c.name: i for i, c in enumerate(checks)}
        return sorted(results, key=lambda r: order[r.check])

    def run_probe(self, probe: Probe, *, full: bool, trigger: str) -> list[CheckResult]:
        """Evaluate one probe in its own snapshot and record each of its checks."""
        window = self._window(probe.checks, full)
        started = dt.datetime.now(dt.UTC)
        clock = time.perf_counter()
        outcome: dict[str, Evaluation] | DqError
        try:
            outcome = probe.evaluate(self.connection(), window)
        except DqError as exc:
            outcome = exc
            if isinstance(exc, DatabaseUnavailable):
                self.close()  # reconnect on the next probe
            log.warning("%s", exc)
        duration = time.perf_counter() - clock
        finished = dt.datetime.now(dt.UTC)
        return [
            self.store.record(
                check,
                outcome if isinstance(outcome, DqError) else outcome[check.name],
                started_at=started,
                finished_at=finished,
                duration=duration,
                requested_mode=window.mode,
                trigger=trigger,
            )
            for check in probe.checks
        ]

    def _window(self, checks: Sequence[Check], full: bool) -> Window:
        ledger = None
        for check in checks:
            if isinstance(check, CounterWrites):
                ledger = self.store.ledger(check)
        if full or not all(c.incremental for c in checks):
            return Window(Mode.FULL, ledger=ledger)
        starts = [self.store.window_start(c) for c in checks]
        if any(s is None for s in starts):
            return Window(Mode.FULL, ledger=ledger)
        since = min(s for s in starts if s is not None) - self.settings.incremental_overlap
        return Window(Mode.INCREMENTAL, since=since, ledger=ledger)

    def connection(self) -> psycopg.Connection[Any]:
        """The monitored database's connection, reconnecting if it was lost.

        Raises DatabaseUnavailable.
        """
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = self._connect()
        return self._conn
