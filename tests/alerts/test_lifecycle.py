"""The alert lifecycle, pure: pending, firing, no duplicates, reminders, resolved, silences."""

from __future__ import annotations

import datetime as dt

from alerts import Kind, Observation, State, advance
from config import AlertsSettings, RouteSettings, Severity

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
ROUTE = RouteSettings(name="team", type="console")
SETTINGS = AlertsSettings()


def obs(run_id, *, ok=False, severity=Severity.CRITICAL, keys=((1, 2),), at=T0):
    samples = tuple({"run_id": f"r{r}", "partition_id": p, "age_seconds": 5.0} for r, p in keys)
    return Observation(
        check="flag_conflict", run_id=run_id, ok=ok, severity=severity,
        violations=0 if ok else len(samples), samples=() if ok else samples,
        key_fields=("run_id", "partition_id"), description="both flags", reproduce_sql="SELECT 1",
        runbook_url=None, at=at,
    )  # fmt: skip


def test_critical_fires_on_the_first_failing_run_and_not_again():
    alert, message = advance(None, obs(1), ROUTE, SETTINGS, silenced=False, now=T0)
    assert alert.state is State.FIRING
    assert message is not None
    assert message.kind is Kind.FIRING
    assert message.new_keys == ({"run_id": "r1", "partition_id": 2},)
    assert message.idempotency_key == f"{alert.fingerprint}-firing-1"
    alert, message = advance(alert, obs(2), ROUTE, SETTINGS, silenced=False, now=T0)
    assert message is None
    assert alert.failing_runs == 2


def test_warning_waits_for_two_failing_runs():
    alert, message = advance(None, obs(1, severity=Severity.WARNING), ROUTE, SETTINGS,
                             silenced=False, now=T0)  # fmt: skip
    assert (alert.state, message) == (State.PENDING, None)
    alert, message = advance(alert, obs(2, severity=Severity.WARNING), ROUTE, SETTINGS,
                             silenced=False, now=T0)  # fmt: skip
    assert alert.state is State.FIRING
    assert message is not None


def test_a_clean_run_while_pending_says_nothing():
    alert, _ = advance(None, obs(1, severity=Severity.WARNING), ROUTE, SETTINGS,
                       silenced=False, now=T0)  # fmt: skip
    alert, message = advance(alert, obs(2, ok=True), ROUTE, SETTINGS, silenced=False, now=T0)
    assert (alert.state, message, alert.failing_runs) == (State.INACTIVE, None, 0)


def test_reminder_after_repeat_interval_says_what_changed():
    alert, _ = advance(None, obs(1, keys=((1, 1), (1, 2))), ROUTE, SETTINGS, silenced=False, now=T0)
    later = T0 + dt.timedelta(hours=3, minutes=59)
    alert, message = advance(alert, obs(2, keys=((1, 2), (3, 3))), ROUTE, SETTINGS,
                             silenced=False, now=later)  # fmt: skip
    assert message is None
    later = T0 + dt.timedelta(hours=4)
    alert, message = advance(alert, obs(3, keys=((1, 2), (3, 3))), ROUTE, SETTINGS,
                             silenced=False, now=later)  # fmt: skip
    assert message is not None
    assert message.kind is Kind.REMINDER
    assert message.new_keys == ({"run_id": "r3", "partition_id": 3},)
    assert message.still_failing_keys == ({"run_id": "r1", "partition_id": 2},)
    assert message.fixed_keys == ({"run_id": "r1", "partition_id": 1},)
    assert message.previous_violations == 2
    assert message.active_since == T0


def test_resolved_lists_the_fixed_keys_and_resets():
    alert, _ = advance(None, obs(1), ROUTE, SETTINGS, silenced=False, now=T0)
    alert, message = advance(alert, obs(2, ok=True), ROUTE, SETTINGS, silenced=False, now=T0)
    assert message is not None
    assert message.kind is Kind.RESOLVED
    assert message.fixed_keys == ({"run_id": "r1", "partition_id": 2},)
    assert message.reproduce_sql == ""
    assert alert.state is State.INACTIVE
    # The next failure is a new episode: a new firing message, all keys new.
    alert, message = advance(alert, obs(3), ROUTE, SETTINGS, silenced=False, now=T0)
    assert message is not None
    assert message.kind is Kind.FIRING
    assert message.new_keys == ({"run_id": "r1", "partition_id": 2},)


def test_resolved_messages_can_be_turned_off_per_route():
    route = RouteSettings(name="quiet", type="console", send_resolved=False)
    alert, _ = advance(None, obs(1), route, SETTINGS, silenced=False, now=T0)
    alert, message = advance(alert, obs(2, ok=True), route, SETTINGS, silenced=False, now=T0)
    assert message is None
    assert alert.state is State.INACTIVE


def test_a_silenced_alert_fires_when_the_silence_ends():
    alert, message = advance(None, obs(1), ROUTE, SETTINGS, silenced=True, now=T0)
    assert (alert.state, message) == (State.FIRING, None)
    alert, message = advance(alert, obs(2), ROUTE, SETTINGS, silenced=False, now=T0)
    assert message is not None
    assert message.kind is Kind.FIRING


def test_same_keys_with_changing_ages_are_not_new():
    alert, _ = advance(None, obs(1), ROUTE, SETTINGS, silenced=False, now=T0)
    o = obs(2, at=T0)
    aged = Observation(**{**o.__dict__, "samples": ({"run_id": "r1", "partition_id": 2,
                                                     "age_seconds": 99.0},)})  # fmt: skip
    _, message = advance(alert, aged, ROUTE, SETTINGS, silenced=False,
                         now=T0 + dt.timedelta(hours=5))  # fmt: skip
    assert message is not None
    assert message.new_keys == ()
    assert message.still_failing_keys == ({"run_id": "r1", "partition_id": 2},)


def test_the_dashboard_link_opens_on_the_alerts_check():
    def link(url):
        settings = AlertsSettings(dashboard_url=url)
        _, message = advance(None, obs(1), ROUTE, settings, silenced=False, now=T0)
        assert message is not None
        return message.dashboard_url

    grafana = "https://grafana.example/d/dq-monitor"
    assert link(grafana) == f"{grafana}?var-check=flag_conflict"
    with_query = f"{grafana}?from=now-6h&var-check=flag_conflict#top"
    assert link(f"{grafana}?from=now-6h#top") == with_query
    assert link(f"{grafana}?var-check=mine") == f"{grafana}?var-check=mine"  # the user's choice
    assert link(None) is None
