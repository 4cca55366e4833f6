"""AlertBook through the AlertRecords protocol: it needs nothing of the state store's own."""

from __future__ import annotations

import datetime as dt

from alerts import Alert, AlertBook, Kind, Notification, State
from checks import CheckResult, Mode, Status, select_checks
from config import AlertsSettings, Settings
from tests.helpers import FakeClock

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
CHECK = select_checks(Settings(), ["dashboard_mismatch"])[0]  # critical: fires at once


class Records:
    """AlertRecords in memory: what the book reads, saves and queues."""

    def __init__(self, *, silenced: bool = False) -> None:
        self.alerts: dict[str, Alert] = {}
        self.queued: list[Notification] = []
        self.is_silenced = silenced

    def silenced(self, check: str, now: dt.datetime) -> bool:
        return self.is_silenced

    def load(self, fingerprints):
        return {f: self.alerts[f] for f in fingerprints if f in self.alerts}

    def save(self, alert: Alert) -> None:
        self.alerts[alert.fingerprint] = alert

    def enqueue(self, message: Notification, now: dt.datetime) -> None:
        self.queued.append(message)


def result(run_id: int, status: Status = Status.VIOLATION) -> CheckResult:
    samples = ({"run_id": "r1"},) if status is Status.VIOLATION else ()
    return CheckResult(
        check=CHECK.name, status=status, severity=CHECK.severity, violations=len(samples),
        samples=samples, duration_seconds=0.1, mode=Mode.FULL, started_at=T0, finished_at=T0,
        run_id=run_id,
    )  # fmt: skip


def book(*routes: dict[str, str]) -> AlertBook:
    return AlertBook(AlertsSettings(routes=list(routes)), FakeClock(T0))


def test_each_wanting_route_advances_and_queues_once():
    records = Records()
    alerts = book({"name": "a", "type": "console"}, {"name": "b", "type": "console"})
    assert alerts.apply(records, CHECK, result(1)) == 2
    assert {m.route for m in records.queued} == {"a", "b"}
    assert all(m.kind is Kind.FIRING for m in records.queued)
    assert {a.state for a in records.alerts.values()} == {State.FIRING}
    assert alerts.apply(records, CHECK, result(2)) == 0  # still failing: nothing new to say
    assert [a.failing_runs for a in records.alerts.values()] == [2, 2]
    assert alerts.apply(records, CHECK, result(3, Status.OK)) == 2
    assert [m.kind for m in records.queued[2:]] == [Kind.RESOLVED, Kind.RESOLVED]


def test_a_silenced_check_changes_state_but_queues_nothing():
    records = Records(silenced=True)
    assert book({"name": "a", "type": "console"}).apply(records, CHECK, result(1)) == 0
    assert records.queued == []
    assert [a.state for a in records.alerts.values()] == [State.FIRING]


def test_an_error_or_an_unwanted_check_touches_nothing():
    records = Records()
    assert book({"name": "a", "type": "console"}).apply(
        records, CHECK, result(1, Status.ERROR)
    ) == 0
    picky = {"name": "a", "type": "console", "min_severity": "critical", "checks": ["other"]}
    assert book(picky).apply(records, CHECK, result(2)) == 0
    assert (records.alerts, records.queued) == ({}, [])
