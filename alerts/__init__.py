"""Alerts layer: the alert lifecycle, message rendering per channel, and outbox delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.lazy import lazy_exports

if TYPE_CHECKING:
    from .alertmanager import alerts_body, deliver_alertmanager, postable_alert, readiness
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
    from .http import http_client, user_agent
    from .labels import (
        TEST_ALERTNAME,
        alert_labels,
        alertname,
        generator_url,
        label_fingerprint,
    )
    from .lifecycle import Alert, Observation, State, advance, fingerprint, sample_keys
    from .notification import Kind, Notification
    from .outbox import (
        DeliveryReport,
        OutboxBatch,
        OutboxClaim,
        OutboxSender,
        OutboxStore,
        QueuedMessage,
    )
    from .resend import FiringAlerts, Resender
    from .secrets import route_secrets, url_secrets

# Each name loads its module on first use: a `check` with nothing to send loads no httpx.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "alertmanager": ("alerts_body", "deliver_alertmanager", "postable_alert", "readiness"),
        "book": ("AlertBook", "AlertRecords"),
        "clock": ("Clock", "SystemClock"),
        "delivery": (
            "RETRY_AFTER_CAP",
            "Outcome",
            "Reachability",
            "deliver",
            "parse_retry_after",
            "reachability",
        ),
        "http": ("http_client", "user_agent"),
        "labels": (
            "TEST_ALERTNAME",
            "alert_labels",
            "alertname",
            "generator_url",
            "label_fingerprint",
        ),
        "lifecycle": ("Alert", "Observation", "State", "advance", "fingerprint", "sample_keys"),
        "notification": ("Kind", "Notification"),
        "outbox": (
            "DeliveryReport",
            "OutboxBatch",
            "OutboxClaim",
            "OutboxSender",
            "OutboxStore",
            "QueuedMessage",
        ),
        "resend": ("FiringAlerts", "Resender"),
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
    "FiringAlerts",
    "Kind",
    "Notification",
    "Observation",
    "OutboxBatch",
    "OutboxClaim",
    "OutboxSender",
    "OutboxStore",
    "Outcome",
    "QueuedMessage",
    "Reachability",
    "Resender",
    "State",
    "SystemClock",
    "advance",
    "alert_labels",
    "alertname",
    "alerts_body",
    "deliver",
    "deliver_alertmanager",
    "fingerprint",
    "generator_url",
    "http_client",
    "label_fingerprint",
    "parse_retry_after",
    "postable_alert",
    "reachability",
    "readiness",
    "route_secrets",
    "sample_keys",
    "url_secrets",
    "user_agent",
]
