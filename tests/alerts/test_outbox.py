"""OutboxSender through the OutboxStore protocol: claims, outcomes, backoff and dead letters."""

from __future__ import annotations

import datetime as dt
import io
import random
from contextlib import contextmanager

from pytest_httpserver import HTTPServer

from alerts import Kind, Notification, OutboxSender, Outcome, QueuedMessage, fingerprint
from config import AlertsSettings, Severity
from tests.helpers import FakeClock

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


class Claim:
    def __init__(self, message: QueuedMessage, marks: list[tuple]) -> None:
        self.message = message
        self.marks = marks

    def mark_sent(self, outcome: Outcome, now: dt.datetime, took: float) -> None:
        self.marks.append(("sent", self.message.id, took))

    def mark_retry(self, outcome: Outcome, attempts: int, now: dt.datetime, delay: float) -> None:
        self.marks.append(("retry", self.message.id, attempts, delay))

    def mark_dead(self, outcome: Outcome) -> None:
        self.marks.append(("dead", self.message.id, outcome.reason))


class Outbox:
    """OutboxStore in memory: each message is claimed once, in order."""

    def __init__(self, *messages: QueuedMessage) -> None:
        self.waiting = list(messages)
        self.marks: list[tuple] = []

    @contextmanager
    def claim_due(self, now: dt.datetime, skip_routes=()):
        yield Claim(self.waiting.pop(0), self.marks) if self.waiting else None


def queued(route: str, *, id: int = 1, attempts: int = 0, age: float = 60.0) -> QueuedMessage:
    message = Notification(
        kind=Kind.FIRING, check="dashboard_mismatch", route=route,
        fingerprint=fingerprint("dashboard_mismatch", route), idempotency_key=f"key-{id}",
        severity=Severity.CRITICAL, description="totals differ", violations=1,
        previous_violations=0, active_since=T0, created_at=T0,
    )  # fmt: skip
    return QueuedMessage(
        id=id, route=route, payload=message.to_json(), attempts=attempts,
        created_at=T0 - dt.timedelta(seconds=age), last_error=None,
    )  # fmt: skip


def sender(outbox: Outbox, *routes: dict[str, str], console: io.StringIO | None = None):
    settings = AlertsSettings(routes=list(routes))
    return OutboxSender(
        outbox, settings, FakeClock(T0), console=console or io.StringIO(), rng=random.Random(1)
    )


def test_a_delivered_message_is_marked_sent_with_its_queue_time():
    outbox, console = Outbox(queued("ops", age=90)), io.StringIO()
    report = sender(outbox, {"name": "ops", "type": "console"}, console=console).deliver_due()
    assert (report.sent, report.lines) == (1, ["route ops: delivered"])
    assert outbox.marks == [("sent", 1, 90.0)]
    assert "dashboard_mismatch" in console.getvalue()


def test_a_gone_route_and_an_old_message_are_dead_letters():
    outbox = Outbox(queued("gone", id=1), queued("ops", id=2, age=2 * 86400))
    report = sender(outbox, {"name": "ops", "type": "console"}).deliver_due()
    assert report.dead == 2
    assert outbox.marks[0] == ("dead", 1, "route 'gone' is no longer configured")
    assert outbox.marks[1][2].startswith("undelivered for 1d; last error: None")


def test_a_429_is_retried_after_its_retry_after(httpserver: HTTPServer):
    httpserver.expect_request("/hook").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "30"}
    )
    outbox = Outbox(queued("hook", attempts=2))
    route = {"name": "hook", "type": "webhook", "url": httpserver.url_for("/hook")}
    report = sender(outbox, route).deliver_due()
    assert (report.retried, outbox.marks) == (1, [("retry", 1, 3, 30.0)])
    assert report.lines == ["route hook: HTTP 429: slow down; retrying in 30.0s"]
