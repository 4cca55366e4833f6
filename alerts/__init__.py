"""Alerts layer: the alert lifecycle, message rendering per channel, and HTTP delivery."""

from __future__ import annotations

from .clock import Clock, SystemClock
from .delivery import (
    RETRY_AFTER_CAP,
    Outcome,
    Reachability,
    deliver,
    parse_retry_after,
    reachability,
)
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
    "Reachability",
    "State",
    "SystemClock",
    "advance",
    "deliver",
    "fingerprint",
    "parse_retry_after",
    "reachability",
    "sample_keys",
]
