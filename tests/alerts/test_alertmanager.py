"""The alertmanager channel: its /api/v2/alerts body, and what a real Alertmanager makes of it."""

from __future__ import annotations

import datetime as dt
import json
import logging

import httpx
import pytest
from pytest_httpserver import HTTPServer

from alerts import Kind, Notification, alert_labels, deliver, label_fingerprint, postable_alert
from alerts.alertmanager import combined
from alerts.delivery import Outcome
from config import RouteSettings, Severity
from tests.helpers import FakeClock
from tests.plugins.alertmanager import Alertmanager, wait_for

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
SECRET = "s3cret-pass"


def message(kind: Kind = Kind.FIRING, check: str = "dashboard_mismatch", **extra) -> Notification:
    values = {
        "kind": kind, "check": check, "route": "am", "fingerprint": "f" * 16,
        "idempotency_key": f"key-{kind.value}-{check}", "severity": Severity.CRITICAL,
        "description": "Dashboard counters disagree with partition_progress.",
        "violations": 3, "previous_violations": 0, "created_at": NOW,
        "active_since": NOW - dt.timedelta(minutes=5), "new_keys": ({"run_id": "r1"},),
        "reproduce_sql": "SELECT 1", "external_url": "https://dq.example.com",
    }  # fmt: skip
    return Notification(**{**values, **extra})


def route(*urls: str, **extra) -> RouteSettings:
    return RouteSettings.model_validate({"name": "am", "type": "alertmanager", "urls": list(urls),
                                         **extra})  # fmt: skip


# --- the body, offline


def test_a_firing_alert_is_valid_for_four_resend_intervals_with_the_rules_labels():
    alert = postable_alert(message(), NOW, dt.timedelta(minutes=1))
    assert alert["labels"] == {"alertname": "DqCriticalCheckViolations", "database": "default",
                               "check": "dashboard_mismatch", "severity": "critical"}  # fmt: skip
    assert alert["startsAt"] == "2026-03-01T11:55:00Z"
    assert alert["endsAt"] == "2026-03-01T12:04:00Z"
    assert alert["generatorURL"] == "https://dq.example.com/?check=dashboard_mismatch"
    notes = alert["annotations"]
    assert notes["summary"] == "[CRITICAL] dashboard_mismatch is failing (3 violations)"
    assert notes["description"].startswith("Dashboard counters disagree")
    assert notes["new_keys"] == '[{"run_id":"r1"}]'
    assert notes["reproduce_sql"] == "SELECT 1"
    assert "runbook_url" not in notes
    assert "fixed_keys" not in notes  # empty key lists are left out
    assert all(isinstance(v, str) for v in notes.values())  # Alertmanager's labelSet


def test_a_resolved_alert_ends_when_it_resolved_and_a_test_alert_starts_resolved():
    ended = NOW - dt.timedelta(seconds=30)
    resolved = postable_alert(message(Kind.RESOLVED, ended_at=ended, runbook_url="https://rb"),
                              NOW, dt.timedelta(minutes=1))  # fmt: skip
    assert resolved["endsAt"] == "2026-03-01T11:59:30Z"
    assert resolved["annotations"]["runbook_url"] == "https://rb"
    test_message = message(Kind.TEST, check="dq_monitor_test", external_url=None,
                           severity=Severity.INFO)  # fmt: skip
    test = postable_alert(test_message, NOW, dt.timedelta(minutes=1))
    assert test["startsAt"] == test["endsAt"] == "2026-03-01T12:00:00Z"
    assert test["labels"] == {"alertname": "DqMonitorTest", "database": "default",
                              "check": "dq_monitor_test", "severity": "none"}  # fmt: skip
    assert "generatorURL" not in test  # no external_url: no link rather than ""


def test_one_acceptance_is_enough_and_only_all_permanent_failures_are_permanent():
    gone, busy = Outcome(False, permanent=True, status=404, reason="HTTP 404"), Outcome(
        False, retry_after=30.0, status=429, reason="HTTP 429")  # fmt: skip
    ok = Outcome(True, status=200, reason="HTTP 200")
    assert combined([("http://a:1", busy), ("http://b:1", ok)]).delivered
    both = combined([("http://a:1", gone), ("http://b:1", busy)])
    assert (both.delivered, both.permanent, both.retry_after) == (False, False, 30.0)
    assert both.reason == "Alertmanager http://a:1: HTTP 404; Alertmanager http://b:1: HTTP 429"
    assert combined([("http://a:1", gone)]).permanent


# --- a real Alertmanager


def send(target: RouteSettings, n: Notification) -> Outcome:
    # The clock is the real one: Alertmanager compares endsAt with its own time.
    with httpx.Client(timeout=5) as client:
        return deliver(target, n, lambda: client, clock=FakeClock())


def notifications(httpserver: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


@pytest.mark.alertmanager_clock
def test_alertmanager_keeps_our_labels_fingerprint_and_groups_by_check(alertmanager, httpserver):
    now = dt.datetime.now(dt.UTC)
    first = message(active_since=now, created_at=now)
    other = message(check="flag_conflict", active_since=now, created_at=now)
    target = route(alertmanager.url)
    assert send(target, first).delivered
    assert send(target, other).delivered
    stored = wait_for("the alert", lambda: alertmanager.alert("DqCriticalCheckViolations",
                                                              "dashboard_mismatch"))  # fmt: skip
    assert stored["labels"] == alert_labels(first)
    # Alertmanager's own fingerprint of the labels is the one alerts/labels.py computes.
    assert stored["fingerprint"] == label_fingerprint(alert_labels(first))
    assert stored["generatorURL"] == "https://dq.example.com/?check=dashboard_mismatch"
    assert stored["status"]["state"] == "active"
    def two_groups():
        found = [g for g in alertmanager.get("/api/v2/alerts/groups") if g["alerts"]]
        return found if len(found) == 2 else None

    groups = wait_for("two groups", two_groups)
    assert sorted(g["labels"]["check"] for g in groups) == ["dashboard_mismatch", "flag_conflict"]
    # Behind Alertmanager, the receiver gets Alertmanager's notification with our labels.
    body = wait_for("Alertmanager's notification", lambda: next(
        (b for b in notifications(httpserver) if b["commonLabels"].get("check")
         == "dashboard_mismatch"), None))  # fmt: skip
    assert body["status"] == "firing"
    assert body["commonLabels"] == alert_labels(first)
    assert body["alerts"][0]["fingerprint"] == label_fingerprint(alert_labels(first))


@pytest.mark.alertmanager_clock
def test_a_test_message_is_accepted_and_never_reaches_the_receiver(alertmanager, httpserver):
    target = route(alertmanager.url)
    now = dt.datetime.now(dt.UTC)
    test = message(Kind.TEST, check="dq_monitor_test", severity=Severity.INFO,
                   active_since=now, created_at=now)  # fmt: skip
    assert send(target, test).delivered
    received = 'alertmanager_alerts_received_total{status="resolved",version="v2"}'
    assert alertmanager.metric(received) == 1  # accepted, as an alert that is over
    assert alertmanager.alert("DqMonitorTest", "dq_monitor_test") is None
    # A sentinel posted after it fires and resolves: by then Alertmanager has flushed the test
    # alert's group too, and nothing of it reached the receiver.
    sentinel = message(check="sentinel", active_since=now, created_at=now)
    assert send(target, sentinel).delivered
    wait_for("the sentinel firing", lambda: any(b["commonLabels"].get("check") == "sentinel"
                                                for b in notifications(httpserver)))  # fmt: skip
    later = dt.datetime.now(dt.UTC)
    assert send(target, message(Kind.RESOLVED, check="sentinel", active_since=now,
                                created_at=later, ended_at=later)).delivered  # fmt: skip
    wait_for("the sentinel resolved", lambda: any(b["status"] == "resolved"
                                                  for b in notifications(httpserver)))  # fmt: skip
    names = {a["labels"]["alertname"] for b in notifications(httpserver) for a in b["alerts"]}
    assert names == {"DqCriticalCheckViolations"}


@pytest.mark.alertmanager_clock
def test_with_one_of_two_alertmanagers_stopped_the_alert_is_still_delivered(
    tmp_path, alertmanager, caplog
):
    stopped = Alertmanager(tmp_path / "am-stopped", "http://127.0.0.1:9/never").start()
    stopped.stop()
    # Credentials in the URL are a secret: only the origin may be shown.
    down = f"http://dq:{SECRET}@127.0.0.1:{stopped.port}"
    target = route(down, f"http://dq:{SECRET}@127.0.0.1:{alertmanager.port}")
    now = dt.datetime.now(dt.UTC)
    with caplog.at_level(logging.WARNING):
        outcome = send(target, message(active_since=now, created_at=now))
    assert outcome.delivered
    assert wait_for("the alert", lambda: alertmanager.alert("DqCriticalCheckViolations",
                                                            "dashboard_mismatch"))  # fmt: skip
    warning = [r.getMessage() for r in caplog.records if "another one accepted" in r.getMessage()]
    assert len(warning) == 1
    assert f"http://127.0.0.1:{stopped.port}" in warning[0]
    assert SECRET not in caplog.text
    alone = send(route(down), message(active_since=now, created_at=now))
    assert not alone.delivered
    assert not alone.permanent  # a network error: retried
    origin = f"http://127.0.0.1:{stopped.port}"
    assert alone.reason.startswith(f"Alertmanager {origin}: network error")
    assert SECRET not in alone.reason


@pytest.mark.alertmanager_clock
def test_a_path_alertmanager_does_not_serve_is_a_permanent_failure(alertmanager):
    # Its 404, as any 4xx but 408 and 429, is not retried.
    now = dt.datetime.now(dt.UTC)
    outcome = send(route(alertmanager.url + "/no-such-prefix"), message(active_since=now,
                                                                          created_at=now))
    assert (outcome.delivered, outcome.permanent, outcome.status) == (False, True, 404)
    assert alertmanager.alerts() == []
