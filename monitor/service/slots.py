"""Global check slots: at most max_concurrent_checks check jobs run at once, all databases."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor

from alerts import Clock

log = logging.getLogger(__name__)

# A waiter rechecks the injected clock at least this often (seconds): its deadline is the
# clock's, and a test's clock moves without waking anyone.
RECHECK = 0.25


class CheckSlots:
    """A bounded semaphore whose waiters give up at a deadline and whose stop() wakes them.

    A free slot goes to the waiter with the earliest deadline (ties: the first to ask), so
    with more databases than slots the run closest to being missed goes first and no database
    waits behind the others' repeated runs.
    """

    def __init__(self, size: int, clock: Clock) -> None:
        if size < 1:
            raise ValueError("CheckSlots needs at least one slot")
        self.size = size
        self.clock = clock
        self._cond = threading.Condition()
        self._in_use = 0
        self._waiting: list[tuple[dt.datetime, int]] = []
        self._tickets = itertools.count()
        self._stopped = False

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._in_use

    def acquire(self, deadline: dt.datetime) -> bool:
        """Take a slot, waiting until the injected clock reaches `deadline` at the latest;
        False if that passed first or stop() was called."""
        with self._cond:
            ticket = (deadline, next(self._tickets))
            self._waiting.append(ticket)
            self._waiting.sort()
            try:
                while not self._stopped:
                    if self._in_use < self.size and self._waiting[0] == ticket:
                        self._in_use += 1
                        return True
                    left = (deadline - self.clock.now()).total_seconds()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, RECHECK))
                return False
            finally:
                self._waiting.remove(ticket)
                # The next waiter may now be at the head (a slot taken or a waiter gone).
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            if self._in_use <= 0:
                raise RuntimeError("CheckSlots released more often than acquired")
            self._in_use -= 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Wake every waiter; later acquires fail at once."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped


class SlotExecutor(ThreadPoolExecutor):  # type: ignore[misc]  # APScheduler 3 is untyped
    """One database's thread pool (its own share: `max_workers`) whose jobs also need a
    global slot; a job that cannot get one within its misfire grace time is missed.

    The missed event is APScheduler's own (EVENT_JOB_MISSED), so the service records it as
    every other missed run; a job woken by stop() neither runs nor counts as missed.
    """

    def __init__(self, max_workers: int, slots: CheckSlots) -> None:
        super().__init__(max_workers=max_workers)
        self.slots = slots

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        def callback(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(self._gated, job, run_times)
        future.add_done_callback(callback)

    def _gated(self, job: Any, run_times: list[dt.datetime]) -> list[JobExecutionEvent]:
        grace = dt.timedelta(seconds=job.misfire_grace_time or 0)
        if not self.slots.acquire(run_times[-1] + grace):
            if self.slots.stopped:
                return []
            log.warning("no check slot free for %s within its misfire grace time", job.id)
            return [
                JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time)
                for run_time in run_times
            ]
        try:
            events: list[JobExecutionEvent] = run_job(
                job, job._jobstore_alias, run_times, self._logger.name
            )
            return events
        finally:
            self.slots.release()
