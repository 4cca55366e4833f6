"""A daemon thread that repeats one action at a fixed interval until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """Calls `action` every `interval` seconds until stop(); an exception is logged, not fatal."""

    def __init__(self, name: str, interval: float, action: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.action = action
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.action()
            except Exception:
                log.exception("%s failed", self.name)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
