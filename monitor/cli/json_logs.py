"""log_format = "json": one object per line (python-json-logger), field order fixed, redacted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from config import redact

# The record's attributes every line carries, under the names log processors expect.
_RENAMED = {"levelname": "level", "name": "logger"}
_FIRST = ("timestamp", "level", "logger", "message")


class JsonLines(JsonFormatter):
    """timestamp (the record's creation time, UTC, RFC 3339), level, logger, message, then
    the record's `extra=` fields (check, mode, duration, outcome, violations; route), then
    exc_info (the traceback as text) when there is one."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s", rename_fields=_RENAMED, timestamp=True
        )
        self.secrets = list(secrets)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered = {key: log_data.pop(key) for key in _FIRST if key in log_data}
        ordered.update(log_data)
        return {key: self._redacted(value) for key, value in ordered.items()}

    def _redacted(self, value: Any) -> Any:
        # A field may carry an exception's text, and so a URL or a password it quoted.
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, list | tuple):
            return [self._redacted(item) for item in value]
        if isinstance(value, dict):
            return {key: self._redacted(item) for key, item in value.items()}
        return value
