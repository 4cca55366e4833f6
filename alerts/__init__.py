"""Alerts layer: the alert lifecycle, message rendering per channel, and HTTP delivery."""

from __future__ import annotations

from .clock import Clock, SystemClock
from .delivery import Outcome, Reachability, deliver, reachability
from .lifecycle import Alert, Observation, State, advance, fingerprint, sample_keys
from .notification import Kind, Notification

__all__ = [
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
    "reachability",
    "sample_keys",
]
