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
        "alertname": "DqMonitorTest", "database": "default", "check": "dq_monitor_test",
        "severity": "none",
    }  # fmt: skip
    assert Notification.from_json(n.to_json()) == n


def _firing(database: str) -> object:
    import datetime as dt

    from alerts import Notification

    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    return Notification(
        kind=Kind.FIRING, check="flag_conflict", route="r", fingerprint="f", idempotency_key="k",
        severity=Severity.CRITICAL, description="", violations=2, previous_violations=0,
        active_since=now, created_at=now, database=database,
    )  # fmt: skip


def test_the_same_check_on_two_databases_is_two_alerts_named_by_their_database():
    from alerts import Notification, alert_labels

    eu, us = _firing("eu"), _firing("us")
    assert isinstance(eu, Notification)
    assert isinstance(us, Notification)
    assert alert_labels(eu)["database"] == "eu"
    assert label_fingerprint(alert_labels(eu)) != label_fingerprint(alert_labels(us))
    assert "flag_conflict (database eu)" in eu.title
    assert "database" not in _default_title()
    assert Notification.from_json(eu.to_json()) == eu


def _default_title() -> str:
    from alerts import Notification

    n = _firing("default")
    assert isinstance(n, Notification)
    return n.title


def test_an_outbox_row_from_before_databases_reads_as_default():
    from alerts import Notification

    n = _firing("eu")
    assert isinstance(n, Notification)
    old = {k: v for k, v in n.to_json().items() if k != "database"}
    assert Notification.from_json(old).database == "default"


def test_links_name_a_database_other_than_default():
    from alerts.labels import dashboard_link

    assert (
        generator_url("https://dq.example", "c", "eu") == "https://dq.example/?check=c&database=eu"
    )
    assert generator_url("https://dq.example", "c", "default") == "https://dq.example/?check=c"
    assert dashboard_link("https://g.example/d?var-check=x", "c", "eu") == (
        "https://g.example/d?var-check=x&var-database=eu"
    )
    assert dashboard_link("https://g.example/d", "c") == "https://g.example/d?var-check=c"


def test_alert_identities_differ_per_database_and_default_keeps_its_own():
    import hashlib

    from alerts import fingerprint

    old = hashlib.sha256(b"dq-monitor\x00c\x00r").hexdigest()[:16]
    assert fingerprint("c", "r") == fingerprint("c", "r", "default") == old
    assert fingerprint("c", "r", "eu") not in (old, fingerprint("c", "r", "us"))
