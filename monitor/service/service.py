"""`dq-monitor run`: the scheduled service: leadership, checks, metrics endpoint, clean shutdown."""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import signal
import sys
import threading
from contextlib import suppress
from functools import partial
from types import FrameType

from alerts import Clock
from checks import CheckResult
from config import (
    DqError,
    Settings,
    StoreError,
    StoreUnavailable,
    check_slots,
    count,
    database_pool_size,
    format_duration,
    pooled,
    state_pool_size,
)
from monitor.app import App
from monitor.fleet import Fleet
from monitor.gate import prune_history
from monitor.service.gate_state import publish_gate_state
from monitor.service.http import Endpoints, HttpServer
from monitor.service.leadership import Leaderships
from monitor.service.metrics import DatabaseView, StatsCache, SweepProgress, build_registry
from monitor.service.periodic import Periodic
from monitor.service.scheduler import JobSpec, build_scheduler, job_specs
from monitor.service.slots import CheckSlots

log = logging.getLogger(__name__)

# Of the shutdown budget, what closing (HTTP, leadership, pools) may take after the wait for
# running checks; each of those steps is bounded well below this.
CLOSE_RESERVE = 2.0


def result_fields(result: CheckResult, database: str) -> dict[str, object]:
    """A check result's line as fields (log_format = "json"); the text line says the same."""
    return {
        "database": database,
        "check": result.check,
        "mode": result.mode.value,
        "duration": result.duration_seconds,
        "outcome": result.status.value,
        "violations": result.violations,
    }


def exit_now(code: int) -> None:
    """End the process at once with `code`, logs flushed.

    The interpreter's own exit joins every non-daemon thread without a timeout (APScheduler's
    workers are such threads), so a check stuck on a silent database would hold it forever.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class Service:
    """Every replica serves metrics; a database's leader also runs that database's checks.

    Each database has its own jobs and its own share of max_concurrent_checks (its own thread
    pool of ceil(cap / databases) threads); every check job also takes one of the cap's global
    slots while it runs. So at most max_concurrent_checks checks run at once, and a slow or
    unreachable database holds only its own share: the others' runs keep their schedule.

    `hard_exit` (the `run` command) arms a last-resort timer at SIGTERM: whatever still runs
    when schedule.shutdown_timeout is up, the process exits 0 with one warning line.
    """

    def __init__(self, settings: Settings, clock: Clock, *, hard_exit: bool = False) -> None:
        self.settings = settings
        self.clock = clock
        self.hard_exit = hard_exit
        names = [d.name for d in settings.monitored()]
        cap = settings.max_concurrent_checks
        self.slots = check_slots(cap, len(names))
        self.check_slots = CheckSlots(cap, clock)
        # One database: a pool of one connection per check slot, plus the gate's. Several: a
        # connection per check or gate read, so what is open is what runs (config.capacity).
        # The state pool serves the global slots and the loops. Delivery is the delivery
        # loop's, every alerts.delivery_interval: a slow receiver never holds a check's
        # thread, and one thread paces each route.
        self.progress = {name: SweepProgress() for name in names}
        self.fleet = Fleet.open(
            settings, clock=clock, state_pool_size=state_pool_size(cap),
            pool_size=database_pool_size(self.slots), per_use=not pooled(len(names)),
            upgrade=False, deliver_in_cycle=False, progress=lambda name: self.progress[name],
        )  # fmt: skip
        self.app = next(iter(self.fleet))  # the first database's: metrics and status page
        self.specs = [s for app in self.fleet for s in job_specs(app.settings, app.database)]
        # One lock per database in the state database, shared fairly among the replicas; a
        # database whose checks are running is never handed over (busy).
        self._running: dict[str, int] = dict.fromkeys(names, 0)
        self.leadership = Leaderships(settings, clock, names, busy=self._busy)
        # One cache per database's store; the registry takes the first's (see build_registry).
        self.caches = {app.database: StatsCache(app.store, clock) for app in self.fleet}
        self.cache = self.caches[self.app.database]
        self._schema_ready = dict.fromkeys(names, False)
        for name in names:
            self._ensure_schema(name)
        self._running_jobs = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._deadline: float | None = None
        self._warned = threading.Lock()  # one warning line about what shutdown left behind
        # Skipped runs are recorded off the scheduler's thread (the main thread, which must
        # stay free to stop the process), in order, by one daemon thread.
        self._skips: queue.SimpleQueue[tuple[JobSpec, str, dt.datetime]] = queue.SimpleQueue()
        self._skip_recorder = threading.Thread(
            target=self._record_skips, name="skip-recorder", daemon=True
        )
        self.scheduler = build_scheduler(
            settings, self.specs, now=clock.now(), run=self._run_job,
            skipped=self._record_skip, first_full_sweep=self._first_full_sweep,
            slots=dict.fromkeys(names, self.slots), check_slots=self.check_slots,
        )  # fmt: skip
        views = {
            app.database: DatabaseView(
                app.settings, self.caches[app.database],
                partial(self.leadership.leads, app.database), self.progress[app.database],
            )
            for app in self.fleet
        }  # fmt: skip
        # A scrape serves a body at most one refresh old (what a follower's values are anyway)
        # rather than render after every check run; the refresh loop renders it (warm).
        self.endpoints = endpoints = Endpoints(
            build_registry(settings, views), views,
            scheduler_running=lambda: bool(self.scheduler.running) and not self._stopping.is_set(),
            stale_for=settings.schedule.metrics_refresh_interval.total_seconds(),
            monotonic=clock.monotonic, clock=clock,
        )  # fmt: skip
        self.http = HttpServer(endpoints, settings.metrics_host, settings.metrics_port)
        sched = settings.schedule
        self.leader_loop = Periodic(
            "leadership", sched.leader_poll_interval.total_seconds(), self.leadership.poll
        )
        self.metrics_loop = Periodic(
            "metrics-refresh", sched.metrics_refresh_interval.total_seconds(), self._refresh
        )
        self.delivery_loop = Periodic(
            "alert-delivery", settings.alerts.delivery_interval.total_seconds(), self._deliver
        )
        self.gate_loop = Periodic(
            "gate", settings.gate.evaluate_interval.total_seconds(), self._evaluate_gate
        )
        self.retention_loop = Periodic(
            "retention", settings.retention.interval.total_seconds(), self.prune
        )

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; returns the exit code, 0.

        Stopping takes at most schedule.shutdown_timeout, whatever the databases do: a check
        or a close that outlives it is abandoned with one warning line, and the code is
        still 0 (the stop was asked for and done; the warning says what was left behind).
        """
        self._refresh()
        self._skip_recorder.start()
        self.http.start()
        self.leadership.poll()  # so a lone replica runs its start-up checks right away
        self.leader_loop.start()
        self.metrics_loop.start()
        self.delivery_loop.start()
        self.gate_loop.start()
        self.retention_loop.start()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        log.info(
            "serving metrics on http://%s:%d/metrics; %d scheduled jobs",
            self.settings.metrics_host, self.http.port, 2 * len(self.specs),
        )  # fmt: skip
        try:
            self.scheduler.start()  # blocks until _on_signal shuts it down
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._shut_down()
        log.info("stopped")
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: cancelling running checks and stopping", signal.Signals(signum).name)
        self.stop()

    def stop(self) -> None:
        """Cancel running checks and stop the scheduler (safe from a signal handler: nothing
        here waits for a database)."""
        if self._deadline is None:
            budget = self.settings.schedule.shutdown_timeout.total_seconds()
            self._deadline = self.clock.monotonic() + budget
            if self.hard_exit:
                threading.Thread(
                    target=self._exit_at_deadline, args=(budget,), name="shutdown-deadline",
                    daemon=True,
                ).start()  # fmt: skip
        self._stopping.set()
        self.check_slots.stop()  # runs waiting for a slot give up, unrecorded
        for app in self.fleet:
            app.pipeline.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def close(self) -> None:
        """Stop the loops and the endpoints, release leadership, close the connections."""
        self.leader_loop.stop()
        self.metrics_loop.stop()
        self.delivery_loop.stop()
        self.gate_loop.stop()
        self.retention_loop.stop()
        self.http.stop()
        self.leadership.release()
        self.fleet.close()

    def _shut_down(self) -> None:
        """Wait for running checks, then close, all by the deadline; warn about what is left."""
        if self._deadline is None:
            self.stop()
        assert self._deadline is not None
        budget = self.settings.schedule.shutdown_timeout.total_seconds()
        running = self._wait_for_jobs(self._deadline - min(CLOSE_RESERVE, budget / 3))
        closer = threading.Thread(target=self.close, name="close", daemon=True)
        closer.start()
        closer.join(max(0.0, self._deadline - 0.1 - self.clock.monotonic()))
        if running or closer.is_alive():
            self._warn_abandoned(running, closed=not closer.is_alive())

    def _wait_for_jobs(self, until: float) -> int:
        """Wait until no check runs or `until` (the cancel went out at stop); returns how
        many still run."""
        with self._idle:
            while self._running_jobs and self.clock.monotonic() < until:
                self._idle.wait(timeout=min(0.25, max(0.01, until - self.clock.monotonic())))
            return self._running_jobs

    def _warn_abandoned(self, running: int, *, closed: bool) -> None:
        if not self._warned.acquire(blocking=False):
            return
        left = [f"{count(running, 'check run')} still waiting on a database"] if running else []
        if not closed:
            left.append("closing the connections")
        log.warning(
            "stopping without waiting any longer after shutdown_timeout %s: abandoned %s",
            format_duration(self.settings.schedule.shutdown_timeout), " and ".join(left),
        )  # fmt: skip

    def _exit_at_deadline(self, budget: float) -> None:
        """Last resort: if the orderly stop has not ended the process by the deadline."""
        threading.Event().wait(budget)
        with self._idle:
            running = self._running_jobs
        self._warn_abandoned(running, closed=False)
        exit_now(0)

    def _led(self) -> list[App]:
        """The Apps of the databases this replica leads now (none while stopping)."""
        if self._stopping.is_set():
            return []
        return [app for app in self.fleet if self.leadership.leads(app.database)]

    def _refresh(self) -> None:
        """Reload every database's cache, then render /metrics for the scrapers already seen,
        here rather than in their scrape."""
        for cache in self.caches.values():
            cache.refresh()
        self.endpoints.exposition.warm()

    def _busy(self, name: str) -> bool:
        with self._idle:
            return self._running[name] > 0

    def _run_job(self, spec: JobSpec, full: bool) -> None:
        name = spec.database
        if (self._stopping.is_set() or not self.leadership.leads(name)
                or not self._ensure_schema(name)):  # fmt: skip
            return
        app = self.fleet.apps[name]
        named = f"{name}/" if len(self.fleet.apps) > 1 else ""
        with self._idle:
            # Asked again under the lock _busy takes: a hand-over that withdrew leadership
            # meanwhile either stops this job here or sees it running (Leaderships).
            if not self.leadership.leads(name):
                return
            self._running_jobs += 1
            self._running[name] += 1
        try:
            trigger = "scheduled-full" if full else "scheduled"
            cycle = app.pipeline.run_probes([spec.probe], full=full, trigger=trigger)
            for result in cycle.results:
                log.info("%s%s: %s, %s (%s, %.3fs)", named, result.check,
                         result.status.value, count(result.violations, "violation"),
                         result.mode.value,
                         result.duration_seconds, extra=result_fields(result, name))  # fmt: skip
        except StoreError as exc:
            log.warning("%s", exc)
            # A state database restored or recreated underneath us: check the schema again.
            self._schema_ready[name] = isinstance(exc, StoreUnavailable)
        except DqError as exc:
            log.warning("%s", exc)
        finally:
            with self._idle:
                self._running_jobs -= 1
                self._running[name] -= 1
                self._idle.notify_all()
        self.caches[name].refresh()  # the leader's own page shows the result at once, /metrics soon

    def _deliver(self) -> None:
        # Each database's outbox in turn, in this one thread: per alert, still in order.
        for app in self._led():
            try:
                app.deliver()  # the outbox, then the re-sends to Alertmanager
            except DqError as exc:
                log.warning("%s", exc)

    def _evaluate_gate(self) -> None:
        """Publish each led database's plans' gate state for dq_gate_*{plan} (and sample
        pg_stat_statements for migration 005's)."""
        for app in self._led():
            if self._schema_ready[app.database]:
                publish_gate_state(app)

    def prune(self) -> bool:
        """On each database's leader only: delete its history past retention (see
        prune_history); returns whether it pruned any."""
        pruned = False
        for app in self._led():
            if not self._schema_ready[app.database]:
                continue
            try:
                result = prune_history(app.settings, app.store, self.clock.now())
            except DqError as exc:
                log.warning("retention (database %s): %s", app.database, exc)
                continue
            log.info("%s", result.summary())
            pruned = pruned or not result.skipped
        return pruned

    def _record_skip(self, spec: JobSpec, status: str, scheduled_at: dt.datetime) -> None:
        if not self._stopping.is_set() and self.leadership.leads(spec.database):
            self._skips.put((spec, status, scheduled_at))

    def _record_skips(self) -> None:
        while True:
            spec, status, scheduled_at = self._skips.get()
            if self._stopping.is_set():
                continue
            for check in spec.checks:
                try:
                    self.fleet.apps[spec.database].store.record_skip(check, status, scheduled_at)
                except DqError as exc:
                    log.warning("%s", exc)

    def _first_full_sweep(self, spec: JobSpec) -> dt.datetime:
        interval = self.settings.schedule.full_sweep_interval
        try:
            last = self.fleet.apps[spec.database].store.last_full_sweep(
                [c.name for c in spec.checks]
            )
        except DqError:
            last = None
        now = self.clock.now()
        return now if last is None else min(max(now, last + interval), now + interval)

    def _ensure_schema(self, name: str) -> bool:
        if not self._schema_ready[name]:
            try:
                self.fleet.apps[name].store.upgrade()
                self._schema_ready[name] = True
            except DqError as exc:
                log.warning("%s; will retry", exc)
        return self._schema_ready[name]
