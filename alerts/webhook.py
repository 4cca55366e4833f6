"""Generic webhook body for one notification, in Alertmanager's webhook v4 format."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from checks import JsonValue

from .labels import alert_labels, generator_url, label_fingerprint
from .notification import Kind, Notification

# Alertmanager sends Go's zero time.Time as endsAt while an alert fires; receivers test for it.
ZERO_TIME = "0001-01-01T00:00:00Z"

#: notification_reason per kind: the strings of Alertmanager's NotifyReason.String()
#: (notify/notify.go, v0.34.0). A test message is none of Alertmanager's reasons, so it says
#: "unknown", the value Alertmanager itself sends when it has no reason.
REASONS = {
    Kind.FIRING: "first notification",
    Kind.REMINDER: "repeat interval elapsed",
    Kind.RESOLVED: "all alerts resolved",
    Kind.TEST: "unknown",
}


def webhook_payload(n: Notification, receiver: str) -> dict[str, JsonValue]:
    """Build the v4 body with one alert; `receiver` names the route. Pure; raises nothing.

    Keys come in Alertmanager's order (template.Data's fields, then the Message's own). A
    test message is `resolved` with endsAt = startsAt, so a receiver that opens incidents
    on `firing` never opens one for it.
    """
    status = "firing" if n.kind in (Kind.FIRING, Kind.REMINDER) else "resolved"
    labels: dict[str, JsonValue] = dict(alert_labels(n))
    annotations = alert_annotations(n)
    alert: dict[str, JsonValue] = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(n.active_since),
        "endsAt": _ends_at(n),
        # "" without alerts.external_url, as Alertmanager sends an alert that has none.
        "generatorURL": generator_url(n.external_url, n.check, n.database),
        "fingerprint": label_fingerprint(alert_labels(n)),
    }
    group_labels: dict[str, JsonValue] = {
        "alertname": labels["alertname"], "database": n.database, "check": n.check,
    }  # fmt: skip
    return {
        "receiver": receiver,
        "status": status,
        "alerts": [alert],
        "notification_reason": REASONS[n.kind],
        "groupLabels": group_labels,
        # One alert per message, so its labels and annotations are all common ones.
        "commonLabels": dict(labels),
        "commonAnnotations": dict(annotations),
        # dq-monitor's routes carry no label configuration; the route's name is the one
        # label each route has, so a receiver can tell routes apart as Alertmanager's do.
        "routeLabels": {"route": n.route},
        "externalURL": n.external_url or "",
        "version": "4",
        "groupKey": _group_key(n.route, group_labels),
        "truncatedAlerts": 0,
    }


def webhook_headers(n: Notification) -> dict[str, str]:
    """Headers for the POST; the idempotency key lets receivers drop at-least-once repeats."""
    return {"Idempotency-Key": n.idempotency_key, "Content-Type": "application/json"}


def rfc3339(moment: dt.datetime) -> str:
    """UTC with a `Z` suffix, as Alertmanager writes startsAt and endsAt."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _ends_at(n: Notification) -> str:
    if n.kind is Kind.TEST:
        return rfc3339(n.active_since)  # over as soon as it starts: nothing to resolve later
    if n.kind is Kind.RESOLVED:
        return rfc3339(n.ended_at or n.created_at)
    return ZERO_TIME


def alert_annotations(n: Notification, *, omit_empty: bool = False) -> dict[str, JsonValue]:
    """The alert's annotations, all strings as in Alertmanager: summary, description, the
    runbook and dashboard links when set, the key lists as compact JSON and the reproduce SQL.
    `omit_empty` leaves out empty lists and SQL (Alertmanager's own UI shows every key)."""
    description = n.description
    if n.kind is Kind.TEST:
        description = f"Test message from dq-monitor for route {n.route}. {description}".strip()
    found: dict[str, JsonValue] = {"summary": n.title, "description": description}
    if n.runbook_url:
        found["runbook_url"] = n.runbook_url
    if n.dashboard_url:
        found["dashboard_url"] = n.dashboard_url
    for name, keys in (("new_keys", n.new_keys), ("still_failing_keys", n.still_failing_keys),
                       ("fixed_keys", n.fixed_keys)):  # fmt: skip
        if keys or not omit_empty:
            found[name] = _compact(keys)
    if n.reproduce_sql or not omit_empty:
        found["reproduce_sql"] = n.reproduce_sql
    return found


def _compact(keys: Sequence[dict[str, JsonValue]]) -> str:
    return json.dumps(list(keys), separators=(",", ":"), ensure_ascii=False)


def _group_key(route: str, group_labels: dict[str, JsonValue]) -> str:
    # Alertmanager's shape: route matchers, then the group's labels, values quoted.
    labels = ", ".join(f"{name}={json.dumps(value)}" for name, value in group_labels.items())
    return f"{{}}/{{route={json.dumps(route)}}}:{{{labels}}}"
