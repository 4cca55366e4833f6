"""A Slack route's digest end to end: real database, real loopback receiver, injected clock."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer

from config import RouteSettings
from tests.alerts.test_payloads import assert_valid_slack, blocks
from tests.helpers import FakeClock
from tests.monitor.test_alert_delivery import bodies, open_app

PATH = "/services/T0/B0/digest-s3cr3t"
CHECKS = ("c1", "c2", "c3", "c4")


@pytest.fixture
def clock():
    return FakeClock()


def custom(failing: bool) -> str:
    # Four critical checks (they fire on their first failing run) that fail or pass together.
    where = "" if failing else " WHERE false"
    return json.dumps([
        {"name": name, "severity": "critical", "description": f"check {name}",
         "sql": f"SELECT {i} AS run_id{where}"}
        for i, name in enumerate(CHECKS)
    ])  # fmt: skip


def open_digest(monkeypatch, db_url, clock, httpserver, failing=True):
    route = {"name": "chat", "type": "slack", "url": httpserver.url_for(PATH), "digest": True}
    return open_app(monkeypatch, db_url, clock, [route], checks__custom=custom(failing))


def outbox(db):
    return db.execute(
        "SELECT check_name, kind, status, attempts FROM dq_monitor.alert_outbox ORDER BY id"
    ).fetchall()


def listed(body) -> list[str]:
    return [b["text"]["text"].split("*")[1] for b in blocks(body)[1:]]


def test_four_failing_checks_are_one_post_and_a_500_retries_them_all(
    monkeypatch, db_url, db, clock, httpserver: HTTPServer
):
    httpserver.expect_ordered_request(PATH).respond_with_data("rollup_error", status=500)
    httpserver.expect_ordered_request(PATH).respond_with_data("ok")
    app = open_digest(monkeypatch, db_url, clock, httpserver)
    try:
        report = app.pipeline.run(CHECKS).delivery
        assert report is not None
        assert (report.sent, report.retried, report.dead) == (0, 4, 0)
        assert report.lines == [report.lines[0]]  # one post, one line
        assert report.lines[0].startswith("route chat: digest of 4 alerts: HTTP 500: rollup_error")
        assert [row[2:] for row in outbox(db)] == [("pending", 1)] * 4
        clock.advance(seconds=301)
        again = app.outbox.deliver_due()
        assert (again.sent, again.retried) == (4, 0)
        # Two attempts each: the 500, then the 200.
        assert [row[2:] for row in outbox(db)] == [("sent", 2)] * 4
        first, second = bodies(httpserver)
        assert first == second  # the retry is the same digest
        assert_valid_slack(first)
        assert blocks(first)[0]["text"]["text"] == "dq-monitor: 4 alerts changed"
        assert listed(first) == [f"[CRITICAL] {name} is failing (1 violation)" for name in CHECKS]
        assert "digest-s3cr3t" not in json.dumps(report.lines + again.lines)
    finally:
        app.close()


def test_resolved_messages_follow_their_firing_ones_in_a_later_digest(
    monkeypatch, db_url, db, clock, httpserver: HTTPServer
):
    httpserver.expect_ordered_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_data("ok")
    httpserver.expect_ordered_request(PATH).respond_with_data("ok")
    app = open_digest(monkeypatch, db_url, clock, httpserver)
    try:
        app.pipeline.run(CHECKS)  # fires; the digest fails and waits for its retry
    finally:
        app.close()
    clock.advance(seconds=301)
    app = open_digest(monkeypatch, db_url, clock, httpserver, failing=False)
    try:
        # The checks pass now: the resolved messages are queued behind the pending firing
        # ones, so this pass sends the firing digest and the next the resolved one.
        first = app.pipeline.run(CHECKS).delivery
        assert first is not None
        assert first.sent == 4
        second = app.outbox.deliver_due()
        assert second.sent == 4
    finally:
        app.close()
    _, firing, resolved = bodies(httpserver)
    assert listed(firing) == [f"[CRITICAL] {name} is failing (1 violation)" for name in CHECKS]
    assert listed(resolved) == [f"[CRITICAL] {name} is resolved" for name in CHECKS]
    assert resolved["attachments"][0]["color"] != firing["attachments"][0]["color"]
    kinds = [(r[1], r[2]) for r in outbox(db)]
    assert kinds == [("firing", "sent")] * 4 + [("resolved", "sent")] * 4


def test_digest_is_for_slack_routes_only():
    with pytest.raises(ValidationError, match="digest = true is for slack routes only"):
        RouteSettings(name="h", type="webhook", url="https://x.example/h", digest=True)
    with pytest.raises(ValidationError, match="digest = true is for slack routes only"):
        RouteSettings(name="c", type="console", digest=True)
