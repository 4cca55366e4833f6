"""The webhook body against Alertmanager's webhook v4 format, field by field."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alerts import alert_labels, label_fingerprint
from alerts.notification import Kind
from alerts.webhook import webhook_headers, webhook_payload
from config import Severity
from tests.alerts.test_payloads import ENDED, huge, notification

# Vendored from prometheus/alertmanager v0.34.0, commit 085f0ef7eb41da24cab8cd000f1345b6250f2edb:
# notify/webhook/webhook.go (Message), template/template.go (Data, Alert, KV) and
# notify/notify.go (NotifyReason.String()). The file names its sources.
FORMAT = json.loads((Path(__file__).parent / "alertmanager_webhook_v4.json").read_text())
EXTERNAL = "https://dq.example"


def json_type(value: Any, go_type: str) -> bool:
    """Whether a decoded JSON value is what encoding/json makes of the Go type."""
    if go_type == "KV":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if go_type == "uint64":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if go_type == "Alerts":
        return isinstance(value, list)
    if go_type == "time.Time":
        return isinstance(value, str) and dt.datetime.fromisoformat(value) is not None
    return isinstance(value, {"string": str, "array": list}[go_type])


def test_the_vendored_format_names_its_source():
    assert FORMAT["version"] == "v0.34.0"
    assert len(FORMAT["commit"]) == 40
    assert FORMAT["message"]["notification_reason"] == "string"
    assert FORMAT["message"]["routeLabels"] == "KV"


@pytest.mark.parametrize(
    ("kind", "status", "reason", "alertname", "severity"),
    [
        (Kind.FIRING, "firing", "first notification", "DqCriticalCheckViolations", "critical"),
        (Kind.REMINDER, "firing", "repeat interval elapsed", "DqCriticalCheckViolations",
         "critical"),
        (Kind.RESOLVED, "resolved", "all alerts resolved", "DqCriticalCheckViolations",
         "critical"),
        (Kind.TEST, "resolved", "unknown", "DqMonitorTest", "none"),
    ],
)  # fmt: skip
def test_every_kind_has_exactly_alertmanagers_fields_and_types(
    kind: Kind, status: str, reason: str, alertname: str, severity: str
) -> None:
    n = notification(kind, external_url=EXTERNAL)
    body = json.loads(json.dumps(webhook_payload(n, "oncall-hook")))
    assert list(body) == list(FORMAT["message"])  # every field, in Alertmanager's order
    for name, go_type in FORMAT["message"].items():
        assert json_type(body[name], go_type), (name, body[name])
    (alert,) = body["alerts"]
    assert list(alert) == list(FORMAT["alert"])
    for name, go_type in FORMAT["alert"].items():
        assert json_type(alert[name], go_type), (name, alert[name])
    assert body["status"] == alert["status"] == status
    assert status in FORMAT["status_values"]
    assert body["notification_reason"] == reason
    assert reason in FORMAT["notification_reason_values"]
    labels = {"alertname": alertname, "database": "default", "check": "stale_partitions",
              "severity": severity}  # fmt: skip
    assert alert["labels"] == body["commonLabels"] == labels
    assert body["groupLabels"] == {
        "alertname": alertname, "database": "default", "check": "stale_partitions"
    }  # fmt: skip
    assert body["routeLabels"] == {"route": "oncall"}
    assert body["commonAnnotations"] == alert["annotations"]
    assert (body["version"], body["truncatedAlerts"], body["receiver"]) == ("4", 0, "oncall-hook")
    assert body["groupKey"] == (
        f'{{}}/{{route="oncall"}}:{{alertname="{alertname}", database="default", '
        'check="stale_partitions"}'
    )
    assert body["externalURL"] == EXTERNAL
    assert alert["generatorURL"] == f"{EXTERNAL}/?check=stale_partitions"
    assert alert["startsAt"] == "2024-05-01T10:00:00Z"


def test_the_fingerprint_is_alertmanagers_over_the_labels_on_every_route():
    firing = webhook_payload(notification(), "a")["alerts"][0]
    elsewhere = webhook_payload(notification(route="other", fingerprint="0" * 16), "b")
    assert firing["fingerprint"] == elsewhere["alerts"][0]["fingerprint"]
    labels = {"alertname": "DqCriticalCheckViolations", "database": "default",
              "check": "stale_partitions", "severity": "critical"}  # fmt: skip
    assert firing["fingerprint"] == label_fingerprint(labels)
    assert firing["fingerprint"] == label_fingerprint(alert_labels(notification()))
    assert firing["fingerprint"] != "f00dfeed"  # not dq-monitor's own (per route) identity
    warning = webhook_payload(notification(severity=Severity.WARNING), "a")
    assert warning["alerts"][0]["labels"]["alertname"] == "DqWarningCheckViolations"
    assert warning["alerts"][0]["fingerprint"] != firing["fingerprint"]


def test_the_test_message_cannot_page():
    alert = webhook_payload(notification(Kind.TEST), "r")["alerts"][0]
    assert alert["status"] == "resolved"
    assert alert["endsAt"] == alert["startsAt"]
    assert alert["labels"]["severity"] == "none"
    assert alert["annotations"]["description"].startswith(
        "Test message from dq-monitor for route oncall."
    )


def test_annotations_carry_the_links_keys_and_sql():
    annotations = webhook_payload(notification(), "r")["alerts"][0]["annotations"]
    assert annotations == {
        "summary": "[CRITICAL] stale_partitions is failing (3 violations)",
        "description": "Partitions not updated for 30 minutes.",
        "runbook_url": "https://runbooks.example/dq/stale_partitions",
        "dashboard_url": "https://grafana.example/d/dq?var-check=stale_partitions&from=now-6h",
        "new_keys": '[{"run_id":"r2","partition_id":3}]',
        "still_failing_keys": (
            '[{"run_id":"r1","partition_id":1},{"run_id":"r1","partition_id":2}]'
        ),
        "fixed_keys": '[{"run_id":"r0","partition_id":7}]',
        "reproduce_sql": "SELECT run_id, partition_id FROM partition_progress WHERE NOT completed",
    }


def test_without_external_url_both_links_are_empty_strings():
    bare = webhook_payload(notification(runbook_url=None, dashboard_url=None), "r")
    assert "runbook_url" not in bare["alerts"][0]["annotations"]
    assert "dashboard_url" not in bare["alerts"][0]["annotations"]
    assert bare["alerts"][0]["generatorURL"] == ""
    assert bare["externalURL"] == ""
    odd = webhook_payload(notification(check="a b/c", external_url=EXTERNAL), "r")
    assert odd["alerts"][0]["generatorURL"] == f"{EXTERNAL}/?check=a%20b%2Fc"


def test_ends_at():
    assert webhook_payload(notification(), "r")["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    reminder = webhook_payload(notification(Kind.REMINDER, ended_at=ENDED), "r")
    assert reminder["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    resolved = webhook_payload(notification(Kind.RESOLVED, ended_at=ENDED), "r")
    assert resolved["alerts"][0]["endsAt"] == "2024-05-01T12:45:00Z"
    fallback = webhook_payload(notification(Kind.RESOLVED), "r")
    assert fallback["alerts"][0]["endsAt"] == "2024-05-01T12:30:00Z"
    other_zone = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    shifted = webhook_payload(notification(active_since=other_zone), "r")
    assert shifted["alerts"][0]["startsAt"] == "2024-05-01T12:00:00Z"


def test_headers():
    assert webhook_headers(notification()) == {
        "Idempotency-Key": "stale_partitions:f00dfeed:3",
        "Content-Type": "application/json",
    }


def test_a_huge_notification_serialises():
    body = webhook_payload(replace(huge(), external_url=EXTERNAL), "r")
    keys_json = body["alerts"][0]["annotations"]["new_keys"]
    assert len(json.loads(keys_json)) == 10_000
    json.dumps(body)
