"""Retention never takes what the gate reads: the verdict is the same before and after a prune."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from config import load_settings
from monitor.app import App
from monitor.gate import Decision, evidence_floor, prune_history, service_key
from tests.helpers import FakeClock, evaluate_gate
from tests.monitor.gate.test_gate import gate_env, insert_history

__all__ = ["gate_env"]  # the fixture, used below


@pytest.fixture
def app(gate_env):
    application = App.open(load_settings(), clock=FakeClock(dt.datetime.now(dt.UTC)))
    yield application
    application.close()


def verdict(at: dt.datetime) -> tuple[object, ...]:
    r = evaluate_gate(at)
    return r.decision, r.clean_since, [(b.kind, b.detail) for b in r.blockers]


def test_a_verdict_is_the_same_before_and_after_pruning_to_the_floor(app, gate_env, monkeypatch):
    insert_history(gate_env, 30, gap_at=8.5)  # a gap before the window: the streak starts after it
    floor = evidence_floor(app.settings, app.store, app.clock.now())
    assert dt.timedelta(days=9) < floor < dt.timedelta(days=10)
    now = dt.datetime.now(dt.UTC)
    before = verdict(now)
    assert before[0] is Decision.OPEN
    monkeypatch.setenv("DQ_RETENTION__HISTORY", "10d")
    result = prune_history(load_settings(), app.store, now)
    assert result.deleted["check_runs"] > 20 * 288 * 3  # most of the 30 days went
    assert verdict(now) == before
    # Pruning into the gate's window would have changed it: the floor is what keeps it.
    app.store.prune(dt.timedelta(days=7), dt.timedelta(0), 1000)
    assert verdict(now) != before


def test_the_services_recorded_rules_raise_what_is_kept(app, gate_env, caplog):
    app.store.set_service_state(service_key("drop_counter_columns"), {"settings": {
        "required_clean_period": "120d", "max_gap_intervals": 3, "full_sweep_max_gap": "26h",
        "checks": ["dashboard_mismatch"], "unknown_blocks": True}})  # fmt: skip
    now = app.clock.now()
    floor = evidence_floor(app.settings, app.store, now)
    assert floor > dt.timedelta(days=121)
    insert_history(gate_env, 0.1)
    gate_env.execute(
        "INSERT INTO dq_monitor.check_runs (check_name, started_at, finished_at, mode, status,"
        " severity, fingerprint) VALUES ('dashboard_mismatch', now() - interval '100 days',"
        " now() - interval '100 days', 'full', 'ok', 'warning', 'f')"
    )
    with caplog.at_level(logging.WARNING):
        result = prune_history(app.settings, app.store, now)
    assert result.deleted["check_runs"] == 0
    assert result.started_at is not None
    assert result.cutoff is not None
    assert result.started_at - result.cutoff == floor
    assert "not retention.history 90d: the gate's recorded rules read that far back" in caplog.text
