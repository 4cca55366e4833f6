"""The global check slots: bounded, earliest deadline first, deadlines from the injected clock."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent

from monitor.service.slots import CheckSlots
from tests.helpers import FakeClock

NOW = dt.datetime(2031, 3, 9, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)


def waiter(slots: CheckSlots, deadline: dt.datetime, got: list[bool]) -> threading.Thread:
    thread = threading.Thread(target=lambda: got.append(slots.acquire(deadline)), daemon=True)
    thread.start()
    return thread


def wait_until_waiting(slots: CheckSlots, count: int) -> None:
    """Until `count` threads wait in acquire (the condition's own bookkeeping, no sleep)."""
    ready = threading.Event()
    while not ready.is_set():
        with slots._cond:
            if len(slots._waiting) >= count:
                ready.set()
            else:
                slots._cond.wait(0.05)


def test_at_most_size_are_held_and_a_release_lets_the_next_in():
    slots = CheckSlots(2, FakeClock(NOW))
    assert slots.acquire(LATER)
    assert slots.acquire(LATER)
    assert slots.in_use == 2
    got: list[bool] = []
    thread = waiter(slots, LATER, got)
    wait_until_waiting(slots, 1)
    assert got == []
    assert slots.in_use == 2
    slots.release()
    thread.join(10)
    assert got == [True]
    assert slots.in_use == 2


def test_a_waiter_gives_up_when_the_injected_clock_passes_its_deadline():
    clock = FakeClock(NOW)
    slots = CheckSlots(1, clock)
    assert slots.acquire(LATER)
    got: list[bool] = []
    thread = waiter(slots, LATER, got)
    wait_until_waiting(slots, 1)
    clock.advance(minutes=6)
    thread.join(10)
    assert got == [False]
    assert slots.in_use == 1  # the holder keeps its slot
    assert not slots.acquire(NOW)  # a deadline already past fails at once


def test_the_earliest_deadline_gets_the_free_slot_first():
    slots = CheckSlots(1, FakeClock(NOW))
    assert slots.acquire(LATER)
    order: list[str] = []
    lock = threading.Lock()

    def take(name: str, deadline: dt.datetime) -> None:
        assert slots.acquire(deadline)
        with lock:
            order.append(name)
        slots.release()

    late = threading.Thread(target=take, args=("late", LATER + dt.timedelta(minutes=1)))
    late.start()
    wait_until_waiting(slots, 1)
    soon = threading.Thread(target=take, args=("soon", LATER))
    soon.start()
    wait_until_waiting(slots, 2)
    slots.release()
    late.join(10)
    soon.join(10)
    assert order == ["soon", "late"]


def test_stop_wakes_every_waiter_and_later_acquires_fail():
    slots = CheckSlots(1, FakeClock(NOW))
    assert slots.acquire(LATER)
    got: list[bool] = []
    threads = [waiter(slots, LATER, got) for _ in range(3)]
    wait_until_waiting(slots, 3)
    slots.stop()
    for thread in threads:
        thread.join(10)
    assert got == [False, False, False]
    assert slots.stopped
    assert not slots.acquire(LATER)


def test_bad_use_is_refused():
    with pytest.raises(ValueError, match="at least one slot"):
        CheckSlots(0, FakeClock(NOW))
    with pytest.raises(RuntimeError, match="released more often"):
        CheckSlots(1, FakeClock(NOW)).release()


@contextmanager
def one_job(
    slots: CheckSlots, clock: FakeClock, job: Callable[[], object]
) -> Iterator[tuple[list[int], threading.Event]]:
    """A real background scheduler on a SlotExecutor over `slots`, running `job` once now
    (misfire grace 60 s); yields the events it fired and an Event set at the first."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.service.slots import SlotExecutor

    events: list[int] = []
    done = threading.Event()

    def listener(event: JobEvent) -> None:
        events.append(event.code)
        done.set()

    scheduler = BackgroundScheduler(timezone=dt.UTC, executors={"default": SlotExecutor(1, slots)})
    scheduler.add_listener(listener, EVENT_JOB_MISSED | EVENT_JOB_EXECUTED)
    scheduler.start()
    try:
        scheduler.add_job(job, "date", run_date=clock.now(), misfire_grace_time=60)
        yield events, done
    finally:
        scheduler.shutdown(wait=True)


def test_a_job_that_finds_no_slot_within_its_grace_is_missed_and_never_runs():
    """SlotExecutor in a real (background) scheduler: all slots taken, the injected clock
    passes the run's misfire grace, APScheduler's own missed event follows."""
    clock = FakeClock()  # starts at the wall clock's now: APScheduler's run times are real
    slots = CheckSlots(1, clock)
    assert slots.acquire(clock.now() + dt.timedelta(minutes=5))  # a hanging neighbour's
    ran: list[str] = []
    with one_job(slots, clock, lambda: ran.append("ran")) as (events, done):
        wait_until_waiting(slots, 1)
        clock.advance(seconds=61)
        assert done.wait(10)
    assert events == [EVENT_JOB_MISSED]
    assert ran == []
    assert slots.in_use == 1  # the waiter took nothing


def test_a_job_that_gets_a_slot_runs_and_gives_it_back():
    clock = FakeClock()
    slots = CheckSlots(1, clock)
    seen: list[int] = []
    with one_job(slots, clock, lambda: seen.append(slots.in_use)) as (events, done):
        assert done.wait(10)
    assert events == [EVENT_JOB_EXECUTED]
    assert seen == [1]  # it held the slot while it ran
    assert slots.in_use == 0
