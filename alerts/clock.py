"""Time as a dependency: the one clock of the application, injected from the top."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    """What every layer asks for the time; nothing else reads the wall clock.

    `now()` is the calendar (what is recorded and compared with settings); `monotonic()`
    measures durations and deadlines and never jumps when the calendar does.
    """

    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock UTC time, the monotonic clock and real sleeping."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
