"""Loaded only by CI's clock-shifted run (PYTHONPATH): sleep without clock_nanosleep.

libfaketime 0.9.10 (Debian 12) mis-converts clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
when FAKETIME_DONT_FAKE_MONOTONIC=1 and hands the kernel a negative time (EINVAL; upstream
libfaketime issue #426). Python 3.11's time.sleep waits exactly that way. The calendar is
what the run moves; monotonic time stays real so that lock, condition and queue timeouts
(sem_clockwait, not intercepted) keep working. select() takes a relative timeout, which
libfaketime passes through untouched.
"""

from __future__ import annotations

import select
import time

_monotonic = time.monotonic


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = _monotonic() + seconds
    while (left := deadline - _monotonic()) > 0:
        select.select([], [], [], left)


time.sleep = _sleep
