"""Alerts layer: the alert lifecycle, message rendering per channel, and outbox delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.lazy import lazy_exports

if TYPE_CHECKING:
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
    from .labels import (
        TEST_ALERTNAME,
        alert_labels,
        alertname,
        generator_url,
        label_fingerprint,
    )
    from .lifecycle import Alert, Observation, State, advance, fingerprint, sample_keys
    from .notification import Kind, Notification
    from .outbox import DeliveryReport, OutboxClaim, OutboxSender, OutboxStore, QueuedMessage
    from .secrets import route_secrets, url_secrets

# Each name loads its module on first use: a `check` with nothing to send loads no httpx.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "book": ("AlertBook", "AlertRecords"),
        "clock": ("Clock", "SystemClock"),
        "delivery": (
            "RETRY_AFTER_CAP",
            "TEST_ALERTNAME",
            "Outcome",
            "Reachability",
            "deliver",
            "parse_retry_after",
            "reachability",
        ),
        "labels": (
            "TEST_ALERTNAME",
            "alert_labels",
            "alertname",
            "generator_url",
            "label_fingerprint",
        ),
        "lifecycle": ("Alert", "Observation", "State", "advance", "fingerprint", "sample_keys"),
        "notification": ("Kind", "Notification"),
        "outbox": ("DeliveryReport", "OutboxClaim", "OutboxSender", "OutboxStore", "QueuedMessage"),
        "secrets": ("route_secrets", "url_secrets"),
    },
)

__all__ = [
    "RETRY_AFTER_CAP",
    "TEST_ALERTNAME",
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
    "alert_labels",
    "alertname",
    "deliver",
    "fingerprint",
    "generator_url",
    "label_fingerprint",
    "parse_retry_after",
    "reachability",
    "route_secrets",
    "sample_keys",
    "url_secrets",
]
