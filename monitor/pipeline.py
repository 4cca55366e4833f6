"""One check cycle, top to bottom: select, window, evaluate, record, alerts, deliver, heartbeat."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts import AlertBook, Clock, DeliveryReport
from alerts.heartbeat import Heartbeat
from checks import (
    Check,
    CheckResult,
    Evaluation,
    Memory,
    Mode,
    Probe,
    Status,
    Window,
    build_probes,
    select_checks,
)
from config import DatabaseUnavailable, DqError, Settings, StoreError, exit_code_of_kinds
from monitor.db import ConnectionSource
from monitor.store import StateStore

log = logging.getLogger(__name__)

#: Told how far each probe's evaluation got: (its checks, its name, ranges done, ranges total).
ProgressListener = Callable[[tuple[str, ...], str, int, int], None]


@dataclass(frozen=True)
class Cycle:
    """What one cycle did: the checks it selected, their recorded results, the delivery."""

    checks: tuple[Check, ...]
    results: tuple[CheckResult, ...]
    delivery: DeliveryReport | None = None

    @property
    def exit_code(self) -> int:
        """The `check` command's documented exit code for these results."""
        return exit_code_of_kinds(
            [r.error_kind for r in self.results if r.status is Status.ERROR],
            problems=any(r.status is not Status.OK for r in self.results),
        )

    @property
    def reached_database(self) -> bool:
        return not any(r.error_kind == DatabaseUnavailable.kind for r in self.results)


class Pipeline:
    """Runs check cycles against the monitored database; `check` and `run` both call it.

    `alerts` (None: results only) advances alert state in the transaction that records each
    result; `deliver` is the cycle's delivery step (the CLI delivers the due messages, the
    service wakes its delivery loop); `heartbeat` is pinged after a cycle without errors.
    `progress` hears each evaluation start (0 of 1), each range of a sweep split into ranges,
    and each evaluation that succeeded end (done == total).
    """

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: ConnectionSource,
        clock: Clock,
        *,
        alerts: AlertBook | None = None,
        deliver: Callable[[], DeliveryReport | None] | None = None,
        heartbeat: Heartbeat | None = None,
        progress: ProgressListener | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.clock = clock
        self.alerts = alerts
        self.deliver = deliver
        self.heartbeat = heartbeat
        self.progress = progress
        self._stopping = threading.Event()

    def run(
        self, names: Sequence[str] = (), *, full: bool = False, trigger: str = "manual"
    ) -> Cycle:
        """One cycle of the enabled (or the named) checks; every outcome is recorded.

        Raises ConfigError for an unknown check name, StoreError/StoreUnavailable when the
        state store fails. A check that cannot be evaluated is a recorded error result.
        """
        checks = select_checks(self.settings, names)
        return self.run_probes(build_probes(checks), full=full, trigger=trigger)

    def run_probes(self, probes: Sequence[Probe], *, full: bool, trigger: str) -> Cycle:
        """One cycle of these probes (the service's job runs the probes of its schedule)."""
        checks = tuple(c for p in probes for c in p.checks)
        results: list[CheckResult] = []
        down: DqError | None = None
        for probe in probes:
            done = self._run_probe(probe, full=full, trigger=trigger, known_down=down)
            results.extend(done)
            # Once the monitored database cannot be reached, every later probe of this cycle
            # would wait connect_timeout (longer, if it stopped answering) to learn the same:
            # they are recorded with the same error instead. One problem, one line.
            lost = [r.error for r in done if r.error_kind == DatabaseUnavailable.kind]
            if down is None and lost and lost[0]:
                down = DatabaseUnavailable(lost[0])
        order = {c.name: i for i, c in enumerate(checks)}
        results.sort(key=lambda r: order[r.check])
        cancelled = self._stopping.is_set()
        delivery = self.deliver() if self.deliver is not None and not cancelled else None
        if (
            self.heartbeat is not None
            and not cancelled
            and all(r.status is not Status.ERROR for r in results)
        ):
            self.heartbeat.ping()
        return Cycle(checks, tuple(results), delivery)

    def _run_probe(
        self, probe: Probe, *, full: bool, trigger: str, known_down: DqError | None
    ) -> list[CheckResult]:
        """Window, evaluate in one snapshot, then record each check with its alert state.

        `known_down` is recorded as the outcome without asking the database. A probe
        cancelled by stop() is not recorded: a deploy's restart is not a failure.
        """
        if self._stopping.is_set():
            return []
        window = self._window(probe, full)
        report = _ProbeProgress(self.progress, probe)
        if self.progress is not None:
            window = dataclasses.replace(window, progress=report)
        started = self.clock.now()
        clock = self.clock.monotonic()
        outcome = known_down or self._evaluate(probe, window)
        if outcome is None:
            return []
        if not isinstance(outcome, DqError):
            report.finish()
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
                alerts=self.alerts,
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


class _ProbeProgress:
    """A probe's checks.Progress callback, forwarding to the listener with the probe's checks."""

    def __init__(self, listener: ProgressListener | None, probe: Probe) -> None:
        self.listener = listener
        self.names = probe.names
        self.label = probe.label
        self.last = (0, 1)
        if listener is not None:
            listener(self.names, self.label, 0, 1)

    def __call__(self, name: str, done: int, total: int) -> None:
        self.label, self.last = name, (done, total)
        if self.listener is not None:
            self.listener(self.names, name, done, total)

    def finish(self) -> None:
        """Done, for probes that report no ranges of their own (or not the last one)."""
        done, total = self.last
        if done < total:
            self(self.label, total, total)
