"""Generic webhook body for one notification, in Alertmanager's webhook v4 format."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from checks import JsonValue

from .notification import Kind, Notification

ALERTNAME = "DqCheckViolations"
TEST_ALERTNAME = "DqMonitorTest"
# Alertmanager sends Go's zero time.Time as endsAt while an alert fires; receivers test for it.
ZERO_TIME = "0001-01-01T00:00:00Z"


def webhook_payload(n: Notification, receiver: str, external_url: str = "") -> dict[str, JsonValue]:
    """Build the v4 body with one alert; `receiver` names the route. Pure; raises nothing."""
    status = "resolved" if n.kind is Kind.RESOLVED else "firing"
    labels = _labels(n)
    annotations = _annotations(n)
    alert: dict[str, JsonValue] = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(n.active_since),
        "endsAt": rfc3339(n.ended_at or n.created_at) if status == "resolved" else ZERO_TIME,
        "generatorURL": n.dashboard_url or "",
        "fingerprint": n.fingerprint,
    }
    group_labels: dict[str, JsonValue] = {"alertname": labels["alertname"], "check": n.check}
    return {
        "version": "4",
        "groupKey": _group_key(n.route, group_labels),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        # One alert per message, so its labels and annotations are all common ones.
        "commonLabels": dict(labels),
        "commonAnnotations": dict(annotations),
        "externalURL": external_url,
        "alerts": [alert],
    }


def webhook_headers(n: Notification) -> dict[str, str]:
    """Headers for the POST; the idempotency key lets receivers drop at-least-once repeats."""
    return {"Idempotency-Key": n.idempotency_key, "Content-Type": "application/json"}


def rfc3339(moment: dt.datetime) -> str:
    """UTC with a `Z` suffix, as Alertmanager writes startsAt and endsAt."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _labels(n: Notification) -> dict[str, JsonValue]:
    alertname = TEST_ALERTNAME if n.kind is Kind.TEST else ALERTNAME
    return {"alertname": alertname, "check": n.check, "severity": n.severity.value}


def _annotations(n: Notification) -> dict[str, JsonValue]:
    description = n.description
    if n.kind is Kind.TEST:
        description = f"Test message from dq-monitor for route {n.route}. {description}".strip()
    annotations: dict[str, JsonValue] = {"summary": n.title, "description": description}
    if n.runbook_url:
        annotations["runbook_url"] = n.runbook_url
    # Annotation values are strings in Alertmanager, so key lists travel as compact JSON.
    annotations["new_keys"] = _compact(n.new_keys)
    annotations["still_failing_keys"] = _compact(n.still_failing_keys)
    annotations["fixed_keys"] = _compact(n.fixed_keys)
    annotations["reproduce_sql"] = n.reproduce_sql
    return annotations


def _compact(keys: Sequence[dict[str, JsonValue]]) -> str:
    return json.dumps(list(keys), separators=(",", ":"), ensure_ascii=False)


def _group_key(route: str, group_labels: dict[str, JsonValue]) -> str:
    # Alertmanager's shape: route matchers, then the group's labels, values quoted.
    labels = ", ".join(f"{name}={json.dumps(value)}" for name, value in group_labels.items())
    return f"{{}}/{{route={json.dumps(route)}}}:{{{labels}}}"
