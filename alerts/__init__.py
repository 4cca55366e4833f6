"""Alerts layer: the alert lifecycle, message rendering per channel, and HTTP delivery."""

from __future__ import annotations

from .clock import Clock, SystemClock
from .delivery import RETRY_AFTER_CAP, Outcome, deliver, parse_retry_after
from .lifecycle import Alert, Observation, State, advance, fingerprint, sample_keys
from .notification import Kind, Notification

__all__ = [
    "RETRY_AFTER_CAP",
    "Alert",
    "Clock",
    "Kind",
    "Notification",
    "Observation",
    "Outcome",
    "State",
    "SystemClock",
    "advance",
    "deliver",
    "fingerprint",
    "parse_retry_after",
    "sample_keys",
]
