"""The release manager's story in the demo: retire the old build, watch the gate, migrate."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import psycopg

from alerts import Clock
from config import DqError, Settings, format_duration
from monitor.app import App
from monitor.demo.simulator import Simulator
from monitor.gate import Decision, Gatekeeper, GateReport, Migrator, make_plan

EVALUATE_EVERY = 3.0  # seconds between the story's gate evaluations (each samples pgss too)
OPERATOR = "dq-monitor demo"
Say = Callable[[str], None]


def retire_after(period: dt.timedelta) -> dt.timedelta:
    """When the old build retires: a quarter of the period, but late enough that the gate
    has seen its writes and reads (the simulator starts its first old-build run within
    seconds)."""
    return max(period / 4, dt.timedelta(seconds=20))


def remember_writes(period: dt.timedelta) -> dt.timedelta:
    """counter_writes' memory for the story: half the period (at most the demo's usual 2m),
    so the writers evidence clears well after the statistics reset and "not yet" shows."""
    return min(period / 2, dt.timedelta(minutes=2))


def headline(report: GateReport) -> str:
    """The gate's headline as `dq-monitor gate` prints it."""
    return report.headline()


class GateStory:
    """Retires the simulated old build part-way, prints the gate's decision each time it
    changes, and once the gate is open applies and rolls back drop_counter_columns.

    `url` is the demo database as its owner (the superuser): the statistics reset and the
    migration run as the release manager would. `pause_checks` stops scheduling checks
    while the columns are gone (counter_writes reads them).
    """

    def __init__(
        self, settings: Settings, clock: Clock, simulator: Simulator, url: str, *,
        pause_checks: Callable[[], None], say: Say,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.clock = clock
        self.simulator = simulator
        self.url = url
        self.pause_checks = pause_checks
        self.say = say
        self.period = settings.gate.required_clean_period
        self.stopping = threading.Event()
        self.code: int | None = None  # set when the story ends on its own

    def stop(self) -> None:
        self.stopping.set()

    def run(self, started: float, done: Callable[[], None]) -> None:
        """The story, in its own thread; calls `done` when it ends on its own."""
        try:
            app = App.open(self.settings, clock=self.clock, alerts=False, upgrade=False)
        except DqError as exc:
            self.say(f"cannot evaluate the gate: {exc}")
            self.code = 1
            done()
            return
        try:
            self.code = self._run(app, started)
        finally:
            app.close()
        if self.code is not None:
            done()

    def _run(self, app: App, started: float) -> int | None:
        retire_at = retire_after(self.period).total_seconds()
        self.say(f"gate period {format_duration(self.period)}: the old build retires after "
                 f"{format_duration(retire_after(self.period))}; the gate's decision is printed "
                 "each time it changes")  # fmt: skip
        retired, last, warned = False, None, False
        while not self.stopping.wait(EVALUATE_EVERY):
            elapsed = self.clock.monotonic() - started
            if not retired and elapsed >= retire_at:
                retired = self._retire()
            try:
                report = Gatekeeper(app.settings, app.store, app.primary,
                                    app.clock).evaluate()  # fmt: skip
            except DqError as exc:
                self.say(f"gate evaluation failed: {exc}")
                continue
            if report.warning and not warned:
                self.say(report.warning)
                warned = True
            if report.decision != last:
                when = format_duration(dt.timedelta(seconds=round(elapsed)))
                self.say(f"gate after {when}: {headline(report)}")
                last = report.decision
            if report.decision is Decision.OPEN:
                return self._migrate(app)
        return None

    def _retire(self) -> bool:
        """Deploy the fix, then reset pg_stat_statements as docs/gate.md says to: statements
        seen since the last reset count as readers, however long ago they ran."""
        self.simulator.retire_old_build()
        if not self.simulator.retired.wait(30) or self.stopping.is_set():
            return False
        self.say("the old build is retired: the fixed build replaces it, the damage its bugs "
                 "left is repaired, no code writes or reads the counters any more")  # fmt: skip
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")
        period = format_duration(self.period)
        self.say("pg_stat_statements reset (the fix is deployed): the gate's reader coverage "
                 f"starts now and needs the whole {period} period")  # fmt: skip
        return True

    def _migrate(self, app: App) -> int:
        """What `dq-monitor migrate --apply` and then `--rollback` do, on the demo database."""
        self.pause_checks()
        self.say("the gate is open: applying drop_counter_columns (checks paused: counter_writes "
                 "reads the columns it drops)")  # fmt: skip
        migrator = Migrator(
            app.settings, app.store, app.primary, app.clock, make_plan(app.settings, None),
            progress=lambda line: self.say(f"  migrate: {line}"),
        )  # fmt: skip
        try:
            migrator.apply(OPERATOR)
            self.say("rolling the migration back (`dq-monitor migrate --rollback`)")
            migrator.rollback(OPERATOR)
        except DqError as exc:
            self.say(f"the migration failed: {exc}")
            return 1
        self.say("done: the gate opened, the counters were dropped and restored")
        return 0
