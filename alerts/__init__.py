"""Alerts layer: the alert lifecycle, message rendering per channel, and outbox delivery."""

from __future__ import annotations

from .book import AlertBook, AlertRecords
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
from .outbox import DeliveryReport, OutboxClaim, OutboxSender, OutboxStore, QueuedMessage

__all__ = [
    "RETRY_AFTER_CAP",
    "Alert",
    "AlertBook",
    "AlertRecords",
    "Clock",
    "DeliveryReport",
    "Kind",
    "Notification",
    "Observation",
    "OutboxClaim",
    "OutboxSender",
    "OutboxStore",
    "Outcome",
    "QueuedMessage",
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
