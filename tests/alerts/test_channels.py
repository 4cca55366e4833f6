"""The channel table: every route type has a channel, and each renders its own request."""

from __future__ import annotations

import datetime as dt

from pydantic import SecretStr

from alerts import Kind, Notification
from alerts.channels import CHANNELS
from config import RouteSettings, RouteType, Severity


def message() -> Notification:
    at = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    return Notification(
        kind=Kind.FIRING, check="dashboard_mismatch", route="r", fingerprint="f" * 16,
        idempotency_key="k-1", severity=Severity.CRITICAL, description="d", violations=1,
        previous_violations=0, active_since=at, created_at=at, reproduce_sql="SELECT 1",
    )  # fmt: skip


def test_every_route_type_has_a_channel():
    assert set(CHANNELS) == set(RouteType)


def test_the_console_channel_prints_rather_than_posts():
    assert CHANNELS[RouteType.CONSOLE].request is None


def test_webhook_requests_carry_the_route_headers_and_the_idempotency_key():
    route = RouteSettings(
        name="hook", type=RouteType.WEBHOOK, url=SecretStr("https://example.invalid/h"),
        headers={"Authorization": SecretStr("Bearer t")},
    )  # fmt: skip
    request = CHANNELS[RouteType.WEBHOOK].request
    assert request is not None
    body, headers = request(message(), route)
    assert headers["Authorization"] == "Bearer t"
    assert headers["Idempotency-Key"] == "k-1"
    assert body["receiver"] == "hook"


def test_slack_requests_are_slack_bodies():
    route = RouteSettings(name="s", type=RouteType.SLACK, url=SecretStr("https://hooks.slack.com/x"))
    request = CHANNELS[RouteType.SLACK].request
    assert request is not None
    body, headers = request(message(), route)
    assert headers == {"Content-Type": "application/json"}
    assert body["blocks"]
