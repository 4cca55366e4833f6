"""Logging for the commands: one-line messages on stderr, timestamps for the service."""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time, so redirection and tests see the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(level: str, *, timestamps: bool = False) -> None:
    handler = _StderrHandler()
    fmt = "dq-monitor: %(levelname)s: %(message)s"
    if timestamps:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # APScheduler logs two INFO lines per job run; dq-monitor logs each result itself.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))
