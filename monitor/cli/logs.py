"""Logging for the commands: one-line messages or JSON objects on stderr, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from config import redact

if TYPE_CHECKING:
    from config import Settings


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time, so redirection and tests see the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _RedactingFormatter(logging.Formatter):
    """The text format; an exception's text (tracebacks too) may quote a URL or a password."""

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure_logging(
    level: str,
    *,
    timestamps: bool = False,
    log_format: str = "text",
    secrets: Sequence[str] = (),
) -> None:
    """Log to stderr at `level`: "text" lines (timestamped for the service) or one "json"
    object per line; every secret in `secrets` is replaced with *** wherever it appears."""
    handler = _StderrHandler()
    if log_format == "json":
        from monitor.cli.json_logs import JsonLines  # python-json-logger loads only for json

        handler.setFormatter(JsonLines(secrets))
    else:
        fmt = "dq-monitor: %(levelname)s: %(message)s"
        if timestamps:
            fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
        handler.setFormatter(_RedactingFormatter(fmt, secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # APScheduler logs two INFO lines per job run; dq-monitor logs each result itself.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def configure_from(
    settings: Settings, *, level: str | None = None, timestamps: bool = False
) -> None:
    """configure_logging as `settings` say (log_level unless `level`, log_format), redacting
    every secret they hold."""
    from monitor.secrets import settings_secrets  # loads alerts and psycopg: not for --help

    configure_logging(
        level or settings.log_level,
        timestamps=timestamps,
        log_format=settings.log_format,
        secrets=settings_secrets(settings),
    )


