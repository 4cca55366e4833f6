"""Slack specifics: colours, code blocks hostile text cannot close, and what a 200 can mean."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pytest_httpserver import HTTPServer

from alerts import Kind, deliver, http_client
from alerts.slack import RESOLVED_COLOUR, SEVERITY_COLOURS, TEST_COLOUR, slack_payload
from config import RouteSettings, Severity
from tests.alerts.test_payloads import assert_valid_slack, blocks, notification, section_with
from tests.helpers import FakeClock

HOSTILE = "SELECT '```' AS a, '``````' AS b FROM t -- ```\n```<!channel>``` `` ` x`"


@pytest.mark.parametrize(
    ("kind", "severity", "bar"),
    [
        (Kind.FIRING, Severity.CRITICAL, SEVERITY_COLOURS[Severity.CRITICAL]),
        (Kind.REMINDER, Severity.WARNING, SEVERITY_COLOURS[Severity.WARNING]),
        (Kind.FIRING, Severity.INFO, SEVERITY_COLOURS[Severity.INFO]),
        (Kind.RESOLVED, Severity.CRITICAL, RESOLVED_COLOUR),
        (Kind.TEST, Severity.INFO, TEST_COLOUR),
    ],
)
def test_the_attachment_colour_follows_severity_and_kind(kind, severity, bar):
    payload = slack_payload(notification(kind, severity=severity))
    assert_valid_slack(payload)
    assert payload["attachments"][0]["color"] == bar
    assert payload["text"]  # the notification fallback stays


def test_the_colours_differ():
    assert len({*SEVERITY_COLOURS.values(), RESOLVED_COLOUR, TEST_COLOUR}) == 5


@pytest.mark.parametrize("repeat", [1, 2_000])
def test_backticks_in_the_sql_cannot_close_its_code_block(repeat):
    payload = slack_payload(notification(reproduce_sql=HOSTILE * repeat))
    assert_valid_slack(payload)
    text = section_with(payload, "*SQL to reproduce*")
    assert len(text) <= 3000
    assert text.startswith("*SQL to reproduce*\n```\n")
    assert text.endswith("\n```")
    inner = text[len("*SQL to reproduce*\n```\n") : -len("\n```")]
    assert "``" not in inner  # no run of backticks left to end the block early
    assert "<!channel>" not in inner
    assert inner.replace("\u200b", "").startswith("SELECT '```' AS a, '``````' AS b")
    if repeat > 1:
        assert inner.endswith("…")


def route(server: HTTPServer) -> RouteSettings:
    return RouteSettings(name="chat", type="slack", url=server.url_for("/services/T/B/s3cr3t"))


@pytest.mark.parametrize(
    ("body", "content_type", "delivered", "permanent", "reason"),
    [
        ("ok", "text/html", True, False, "HTTP 200"),
        ("invalid_blocks", "text/html", False, True, "HTTP 200: Slack answered 'invalid_blocks'"),
        ("", "text/plain", False, True, "HTTP 200: Slack answered ''"),
        ('{"ok": true}', "application/json", True, False, "HTTP 200"),
        ('{"ok": false, "error": "channel_not_found"}', "application/json", False, True,
         "HTTP 200: Slack answered an error: channel_not_found"),
        ("<html>proxy", "application/json; charset=utf-8", False, False,
         "HTTP 200: Slack's JSON answer does not parse"),
    ],
)  # fmt: skip
def test_a_200_is_a_success_only_when_slack_says_ok(
    httpserver: HTTPServer, body, content_type, delivered, permanent, reason
):
    httpserver.expect_request("/services/T/B/s3cr3t").respond_with_data(
        body, content_type=content_type
    )
    clock = FakeClock(dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    with http_client(5.0) as client:
        outcome = deliver(route(httpserver), notification(), lambda: client, clock=clock)
    assert (outcome.delivered, outcome.permanent, outcome.status) == (delivered, permanent, 200)
    assert outcome.reason.startswith(reason)
    assert "s3cr3t" not in outcome.reason
    sent = json.loads(httpserver.log[0][0].get_data())
    assert blocks(sent)[0]["type"] == "header"


def test_a_digest_of_a_hundred_alerts_stays_within_slacks_limits():
    from alerts.digest import digest_payload

    many = [notification(check=f"check_{i}&<x>", description="d" * 5000) for i in range(100)]
    many[-1] = notification(Kind.RESOLVED, check="last")
    payload = digest_payload(many)
    assert_valid_slack(payload)
    every = blocks(payload)
    assert len(every) == 50
    assert every[0]["text"]["text"] == "dq-monitor: 100 alerts changed"
    more = every[-1]["text"]["text"]
    assert more.startswith(f"+{100 - 48} more: check_48&amp;&lt;x&gt;, ")
    assert more.endswith("last")
    assert payload["text"] == "dq-monitor: 100 alerts changed (99 failing, 1 resolved)"
    assert payload["attachments"][0]["color"] == SEVERITY_COLOURS[Severity.CRITICAL]
    assert digest_payload(many[-1:])["attachments"][0]["color"] == RESOLVED_COLOUR
