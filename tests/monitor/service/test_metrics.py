"""The collector: every configured check's series from start-up, values from the state store."""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from alerts import SystemClock
from config import load_settings
from monitor.app import App
from monitor.db import ConnectionSource
from monitor.service.metrics import StatsCache, SweepProgress, build_registry
from monitor.store.state_store import StateStore
from tests.factories import healthy_run, seed_race
from tests.helpers import FakeClock
from tests.monitor.service_harness import start_service


@pytest.fixture
def app(monkeypatch, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_CHECKS__CUSTOM", '[{"name": "mine", "sql": "SELECT 1 WHERE false"}]')
    application = App.open(load_settings(), clock=SystemClock())
    yield application
    application.close()


def test_every_series_is_zero_before_the_first_run(app):
    cache = StatsCache(app.store, app.clock)
    assert cache.refresh()
    registry = build_registry(app.settings, cache, lambda: False)
    for check in ("dashboard_mismatch", "counter_writes", "mine"):
        labels = {"check": check}
        assert registry.get_sample_value("dq_check_violations", labels) == 0
        assert registry.get_sample_value("dq_check_status", labels) == 0
        assert registry.get_sample_value("dq_check_runs_total", labels) == 0
        assert registry.get_sample_value("dq_check_duration_seconds_count", labels) == 0
        assert registry.get_sample_value("dq_check_last_success_timestamp_seconds", labels) == 0
    assert registry.get_sample_value("dq_leader") == 0
    assert registry.get_sample_value("dq_state_store_up") == 1


def test_values_follow_recorded_runs(app, db):
    seed_race(db, "race")
    before = dt.datetime.now(dt.UTC).timestamp()
    app.pipeline.run()
    app.pipeline.run(["dashboard_mismatch"])
    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    registry = build_registry(app.settings, cache, lambda: True)
    labels = {"check": "dashboard_mismatch"}
    assert registry.get_sample_value("dq_check_violations", labels) == 1
    assert registry.get_sample_value("dq_check_status", labels) == 1
    assert registry.get_sample_value("dq_check_runs_total", labels) == 2
    assert registry.get_sample_value("dq_check_errors_total", labels) == 0
    assert registry.get_sample_value("dq_check_duration_seconds_count", labels) == 2
    assert (
        registry.get_sample_value("dq_check_duration_seconds_bucket", {**labels, "le": "+Inf"}) == 2
    )
    assert registry.get_sample_value("dq_check_last_success_timestamp_seconds", labels) >= before
    assert registry.get_sample_value("dq_check_runs_total", {"check": "mine"}) == 1
    assert registry.get_sample_value("dq_check_info", {**labels, "severity": "critical"}) == 1
    assert registry.get_sample_value("dq_database_up") == 1
    assert registry.get_sample_value("dq_leader") == 1


def test_errors_count_and_keep_the_last_known_violations(app, db, monkeypatch):
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    db.execute("ALTER TABLE worker_runs RENAME TO worker_runs_gone")
    app.pipeline.run(["dashboard_mismatch"])
    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    registry = build_registry(app.settings, cache, lambda: True)
    labels = {"check": "dashboard_mismatch"}
    assert registry.get_sample_value("dq_check_status", labels) == 2
    assert registry.get_sample_value("dq_check_errors_total", labels) == 1
    assert registry.get_sample_value("dq_check_violations", labels) == 1


def test_store_outage_keeps_the_last_snapshot(app, db):
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    unreachable = ConnectionSource(
        SecretStr("postgresql://dq@127.0.0.1:1/gone"), purpose="state store",
        connect_timeout=dt.timedelta(seconds=1),
    )  # fmt: skip
    cache.store = StateStore(unreachable, "dq_monitor", 20, app.clock)
    assert cache.refresh() is False
    registry = build_registry(app.settings, cache, lambda: False)
    assert registry.get_sample_value("dq_state_store_up") == 0
    assert registry.get_sample_value("dq_check_violations", {"check": "dashboard_mismatch"}) == 1


def test_help_says_where_results_come_from(app):
    cache = StatsCache(app.store, app.clock)
    text = generate_latest(build_registry(app.settings, cache, lambda: False))
    assert b"# HELP dq_check_violations Violations found by the check's latest run. Cached" in text
    assert b"a full sweep every 1d" in text
    assert b"_created" not in text


def test_cached_exposition_follows_the_snapshot(app, db):
    from monitor.service.exposition import CachedExposition

    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    leader = [False]
    registry = build_registry(app.settings, cache, lambda: leader[0])
    exposition = CachedExposition(
        registry, lambda: (cache.snapshot.loaded_at, cache.store_up, leader[0])
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}

    def render() -> bytes:
        return exposition.response(environ)[2]

    first = render()
    assert render() is first  # nothing changed: the same bytes
    assert b'dq_check_violations{check="dashboard_mismatch"} 0.0' in first
    leader[0] = True
    assert b"dq_leader 1.0" in render()
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    cache.refresh()
    assert b'dq_check_violations{check="dashboard_mismatch"} 1.0' in render()


def test_gate_series_carry_the_plan(app):
    """Each plan's gate, as the service published it, under its own `plan` label."""
    app.store.upgrade()
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    app.store.set_service_state("gate:partition_flags_exclusive", {
        "decision": "open", "clean_since": at.isoformat(), "required_seconds": 60.0,
    })  # fmt: skip
    app.store.set_service_state("gate", {"decision": "blocked", "clean_since": None})
    clock = FakeClock()
    cache = StatsCache(app.store, clock)
    cache.refresh()
    registry = build_registry(app.settings, cache, lambda: True)
    flags = {"plan": "partition_flags_exclusive"}
    drop = {"plan": "drop_counter_columns"}
    assert registry.get_sample_value("dq_gate_open", flags) == 1
    since = registry.get_sample_value("dq_gate_clean_since_timestamp_seconds", flags)
    assert since == at.timestamp()
    clock.advance(days=1)  # a timestamp: a later scrape of the same snapshot says the same
    assert registry.get_sample_value("dq_gate_clean_since_timestamp_seconds", flags) == since
    assert registry.get_sample_value("dq_gate_required_seconds", flags) == 60
    assert registry.get_sample_value("dq_gate_open", drop) == 0
    assert registry.get_sample_value("dq_gate_clean_since_timestamp_seconds", drop) == 0
    assert registry.get_sample_value("dq_gate_required_seconds", drop) == 7 * 86400


def test_the_progress_gauge_follows_each_range_of_a_sweep(monkeypatch, db_url, db):
    for i in range(10):
        healthy_run(db, f"r{i}", partitions=3)
    seed_race(db, "race")
    db.execute("ANALYZE")
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_SWEEP_CHUNK_ROWS", "4")
    progress = SweepProgress()
    seen: list[float] = []

    def listen(checks, name, done, total):
        progress(checks, name, done, total)
        seen.append(progress.ratio("flag_conflict"))

    application = App.open(load_settings(), clock=SystemClock(), progress=listen)
    try:
        cache = StatsCache(application.store, application.clock)
        registry = build_registry(application.settings, cache, lambda: True, progress)
        for check in ("dashboard_mismatch", "stale_partitions", "counter_writes"):
            assert registry.get_sample_value("dq_check_progress_ratio", {"check": check}) == 0
        application.pipeline.run(["dashboard_mismatch", "flag_conflict", "counter_writes"])
    finally:
        application.close()
    assert 0 < min(r for r in seen if r > 0) < 0.5  # the sweep moved it range by range
    assert seen == sorted(seen)
    for check in ("dashboard_mismatch", "flag_conflict", "counter_writes"):
        assert registry.get_sample_value("dq_check_progress_ratio", {"check": check}) == 1
    assert registry.get_sample_value("dq_check_progress_ratio", {"check": "stale_partitions"}) == 0


def test_the_service_serves_the_progress_gauge(tmp_path, db_url, db):
    for i in range(6):
        healthy_run(db, f"r{i}", partitions=3)
    db.execute("ANALYZE")
    svc = start_service(tmp_path, db_url, env={"DQ_SWEEP_CHUNK_ROWS": "2"})
    try:
        key = 'dq_check_progress_ratio{check="dashboard_mismatch"}'
        svc.wait_for("a finished sweep", lambda: svc.metrics().get(key) == 1)
        assert 'dq_check_progress_ratio{check="stale_partitions"}' in svc.metrics()
    finally:
        svc.stop(signal.SIGKILL)
