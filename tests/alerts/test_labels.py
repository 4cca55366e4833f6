"""Alert labels match the shipped Prometheus rules; the fingerprint is Alertmanager's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from alerts import Kind, alertname, generator_url, label_fingerprint
from config import AlertsSettings, Severity

RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "dq-monitor-rules.yml"


def test_alertnames_are_the_shipped_rules_names():
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    by_severity = {
        r["labels"]["severity"]: r["alert"] for r in rules if r["alert"].endswith("CheckViolations")
    }
    assert alertname(Severity.CRITICAL) == by_severity["critical"] == "DqCriticalCheckViolations"
    assert alertname(Severity.WARNING) == by_severity["warning"] == "DqWarningCheckViolations"
    assert alertname(Severity.INFO) == "DqInfoCheckViolations"  # no rule: info never pages
    assert alertname(Severity.CRITICAL, Kind.TEST) == "DqMonitorTest"


def test_fingerprint_is_fnv1a_over_sorted_labels():
    # An empty set hashes to FNV-1a's offset basis, as prometheus/common's emptyLabelSignature.
    assert label_fingerprint({}) == "cbf29ce484222325"
    labels = {"check": "flag_conflict", "alertname": "DqCriticalCheckViolations"}
    assert label_fingerprint(labels) == label_fingerprint(dict(reversed(labels.items())))
    assert re.fullmatch(r"[0-9a-f]{16}", label_fingerprint(labels))
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert label_fingerprint({"ab": "c"}) != label_fingerprint({"a": "bc"})


def test_external_url_is_validated_and_normalised():
    assert AlertsSettings(external_url="https://dq.example/").external_url == "https://dq.example"
    with pytest.raises(ValueError, match="external_url must start with https:// or http://"):
        AlertsSettings(external_url="dq.example")


def test_generator_url_points_at_the_status_page():
    assert generator_url(None, "flag_conflict") == ""
    assert generator_url("https://dq.example", "a b") == "https://dq.example/?check=a%20b"


def test_a_test_message_is_labelled_so_no_page_matches_it():
    import datetime as dt

    from alerts import Notification, alert_labels

    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    n = Notification(
        kind=Kind.TEST, check="dq_monitor_test", route="r", fingerprint="f", idempotency_key="k",
        severity=Severity.CRITICAL, description="", violations=0, previous_violations=0,
        active_since=now, created_at=now, external_url="https://dq.example",
    )  # fmt: skip
    assert alert_labels(n) == {
        "alertname": "DqMonitorTest", "check": "dq_monitor_test", "severity": "none"
    }  # fmt: skip
    assert Notification.from_json(n.to_json()) == n
