"""Counts in what alert recipients read agree with their nouns: 0, 1 and 2 of each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts.console import console_text
from alerts.digest import digest_payload
from alerts.notification import Kind
from alerts.slack import slack_payload
from alerts.webhook import webhook_payload
from tests.alerts.test_payloads import notification

N = [(0, "0 violations"), (1, "1 violation"), (2, "2 violations"), (1204, "1,204 violations")]


@pytest.mark.parametrize(("n", "words"), N)
def test_the_title_counts_violations_in_slack_webhook_and_console(n, words):
    message = notification(violations=n)
    title = f"[CRITICAL] stale_partitions is failing ({words})"
    assert message.title == title
    assert slack_payload(message)["text"].startswith(f"{title}:")
    (alert,) = webhook_payload(message, "oncall")["alerts"]
    assert alert["annotations"]["summary"] == title
    assert console_text(message).splitlines()[0] == title


def test_a_resolved_title_has_no_count():
    assert notification(Kind.RESOLVED, violations=1).title == (
        "[CRITICAL] stale_partitions is resolved"
    )


@pytest.mark.parametrize(("n", "title"), [(1, "dq-monitor: 1 alert changed"),
                                          (2, "dq-monitor: 2 alerts changed")])  # fmt: skip
def test_the_digest_counts_alerts(n, title):
    messages = [replace(notification(), check=f"c{i}") for i in range(n)]
    payload = digest_payload(messages)
    assert payload["text"] == f"{title} ({n} failing)"
