"""The collector: every configured check's series from start-up, values from the state store."""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from alerts import SystemClock
from checks import all_checks
from config import load_settings
from monitor.app import App
from monitor.db import ConnectionSource
from monitor.gate import service_key
from monitor.service.metrics import (
    DatabaseView,
    StatsCache,
    SweepProgress,
    build_registry,
    exposition_key,
    one_database,
)
from monitor.store.state_store import StateStore
from tests.factories import healthy_run, seed_race
from tests.helpers import FakeClock
from tests.monitor.service_harness import start_service

DEFAULT = {"database": "default"}


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
    registry = build_registry(app.settings, one_database(app.settings, cache, lambda: False))
    for check in ("dashboard_mismatch", "counter_writes", "mine"):
        labels = {**DEFAULT, "check": check}
        assert registry.get_sample_value("dq_check_violations", labels) == 0
        assert registry.get_sample_value("dq_check_status", labels) == 0
        assert registry.get_sample_value("dq_check_runs_total", labels) == 0
        assert registry.get_sample_value("dq_check_duration_seconds_count", labels) == 0
        assert registry.get_sample_value("dq_check_last_success_timestamp_seconds", labels) == 0
    assert registry.get_sample_value("dq_leader", DEFAULT) == 0
    assert registry.get_sample_value("dq_state_store_up") == 1


def test_values_follow_recorded_runs(app, db):
    seed_race(db, "race")
    before = dt.datetime.now(dt.UTC).timestamp()
    app.pipeline.run()
    app.pipeline.run(["dashboard_mismatch"])
    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    registry = build_registry(app.settings, one_database(app.settings, cache, lambda: True))
    labels = {**DEFAULT, "check": "dashboard_mismatch"}
    assert registry.get_sample_value("dq_check_violations", labels) == 1
    assert registry.get_sample_value("dq_check_status", labels) == 1
    assert registry.get_sample_value("dq_check_runs_total", labels) == 2
    assert registry.get_sample_value("dq_check_errors_total", labels) == 0
    assert registry.get_sample_value("dq_check_duration_seconds_count", labels) == 2
    assert (
        registry.get_sample_value("dq_check_duration_seconds_bucket", {**labels, "le": "+Inf"}) == 2
    )
    assert registry.get_sample_value("dq_check_last_success_timestamp_seconds", labels) >= before
    assert registry.get_sample_value("dq_check_runs_total", {**DEFAULT, "check": "mine"}) == 1
    assert registry.get_sample_value("dq_check_info", {**labels, "severity": "critical"}) == 1
    assert registry.get_sample_value("dq_database_up", DEFAULT) == 1
    assert registry.get_sample_value("dq_leader", DEFAULT) == 1


def test_errors_count_and_keep_the_last_known_violations(app, db, monkeypatch):
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    db.execute("ALTER TABLE worker_runs RENAME TO worker_runs_gone")
    app.pipeline.run(["dashboard_mismatch"])
    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    registry = build_registry(app.settings, one_database(app.settings, cache, lambda: True))
    labels = {**DEFAULT, "check": "dashboard_mismatch"}
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
    registry = build_registry(app.settings, one_database(app.settings, cache, lambda: False))
    assert registry.get_sample_value("dq_state_store_up") == 0
    assert (
        registry.get_sample_value("dq_check_violations", {**DEFAULT, "check": "dashboard_mismatch"})
        == 1
    )


def test_help_says_where_results_come_from(app):
    cache = StatsCache(app.store, app.clock)
    text = generate_latest(
        build_registry(app.settings, one_database(app.settings, cache, lambda: False))
    )
    assert b"# HELP dq_check_violations Violations found by the check's latest run. Cached" in text
    assert b"a full sweep every 1d" in text
    assert b"_created" not in text


def test_cached_exposition_follows_the_snapshot(app, db):
    from monitor.service.exposition import CachedExposition

    cache = StatsCache(app.store, app.clock)
    cache.refresh()
    leader = [False]
    views = one_database(app.settings, cache, lambda: leader[0])
    exposition = CachedExposition(
        build_registry(app.settings, views), lambda: exposition_key(views)
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}

    def render() -> bytes:
        return exposition.response(environ)[2]

    first = render()
    assert render() is first  # nothing changed: the same bytes
    assert b'dq_check_violations{check="dashboard_mismatch",database="default"} 0.0' in first
    leader[0] = True
    assert b'dq_leader{database="default"} 1.0' in render()
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    cache.refresh()
    assert b'dq_check_violations{check="dashboard_mismatch",database="default"} 1.0' in render()


def _eu(app, monkeypatch):
    """A second monitored database, `eu`: its own state schema in the same state database (and
    pool), and its own checks (`eu_only` instead of `mine`)."""
    monkeypatch.setenv("DQ_CHECKS__CUSTOM", '[{"name": "eu_only", "sql": "SELECT 1 WHERE false"}]')
    settings = load_settings()
    store = StateStore(app.store.source, "dq_monitor_eu", 20, app.clock)
    store.upgrade()
    return settings, store


def test_each_database_has_its_own_series(app, db, monkeypatch):
    """Two databases on one state store: every per-check, per-database, per-plan and per-route
    series once per database with that database's values; replica series once, unlabelled."""
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    eu_settings, eu_store = _eu(app, monkeypatch)
    (mismatch,) = [c for c in all_checks(eu_settings) if c.name == "dashboard_mismatch"]
    eu_store.record_skip(mismatch, "missed", app.clock.now())
    eu_store.set_service_state(
        service_key("drop_counter_columns"), {"decision": "open", "clean_since": None}
    )
    default_cache, eu_cache = StatsCache(app.store, app.clock), StatsCache(eu_store, app.clock)
    assert default_cache.refresh()
    assert eu_cache.refresh()
    views = {
        "default": DatabaseView(app.settings, default_cache, lambda: True),
        "eu": DatabaseView(eu_settings, eu_cache, lambda: False),
    }
    registry = build_registry(app.settings, views)
    eu = {"database": "eu"}

    def value(name, labels=None):
        return registry.get_sample_value(name, labels)

    assert value("dq_check_violations", {**DEFAULT, "check": "dashboard_mismatch"}) == 1
    assert value("dq_check_violations", {**eu, "check": "dashboard_mismatch"}) == 0
    assert value("dq_check_missed_runs_total", {**DEFAULT, "check": "dashboard_mismatch"}) == 0
    assert value("dq_check_missed_runs_total", {**eu, "check": "dashboard_mismatch"}) == 1
    assert value("dq_check_runs_total", {**DEFAULT, "check": "mine"}) == 0
    assert value("dq_check_runs_total", {**eu, "check": "mine"}) is None
    assert value("dq_check_runs_total", {**eu, "check": "eu_only"}) == 0
    assert (value("dq_database_up", DEFAULT), value("dq_database_up", eu)) == (1, 0)
    assert (value("dq_leader", DEFAULT), value("dq_leader", eu)) == (1, 0)
    drop = {"plan": "drop_counter_columns"}
    assert value("dq_gate_open", {**DEFAULT, **drop}) == 0
    assert value("dq_gate_open", {**eu, **drop}) == 1
    assert value("dq_alert_outbox_pending", eu) == 0
    assert value("dq_state_pruned_rows_total", {**eu, "table": "check_runs"}) == 0
    assert value("dq_state_store_up") == 1
    snapshot = value("dq_metrics_snapshot_timestamp_seconds")
    assert snapshot == min(default_cache.snapshot.loaded_at, eu_cache.snapshot.loaded_at) > 0

    families = text_string_to_metric_families(generate_latest(registry).decode())
    unlabelled = {"dq_state_store_up", "dq_metrics_snapshot_timestamp_seconds", "dq_build_info"}
    for family in families:
        for sample in family.samples:
            has = "database" in sample.labels
            assert has is (family.name not in unlabelled), (family.name, sample.labels)


def test_a_database_whose_store_read_fails_marks_the_replica_store_down(app, monkeypatch):
    eu_settings, _eu_store = _eu(app, monkeypatch)
    unreachable = ConnectionSource(
        SecretStr("postgresql://dq@127.0.0.1:1/gone"), purpose="state store",
        connect_timeout=dt.timedelta(seconds=1),
    )  # fmt: skip
    default_cache = StatsCache(app.store, app.clock)
    eu_cache = StatsCache(StateStore(unreachable, "dq_monitor_eu", 20, app.clock), app.clock)
    assert default_cache.refresh()
    assert not eu_cache.refresh()
    views = {
        "default": DatabaseView(app.settings, default_cache, lambda: True),
        "eu": DatabaseView(eu_settings, eu_cache, lambda: True),
    }
    registry = build_registry(app.settings, views)
    assert registry.get_sample_value("dq_state_store_up") == 0
    # Never loaded: the oldest load is "never", not the other database's.
    assert registry.get_sample_value("dq_metrics_snapshot_timestamp_seconds") == 0


def test_the_exposition_key_follows_every_database(app, monkeypatch):
    """Any one database's reload, leadership or sweep progress re-renders the cached body."""
    eu_settings, eu_store = _eu(app, monkeypatch)
    leads = {"default": False, "eu": False}
    caches = {"default": StatsCache(app.store, app.clock), "eu": StatsCache(eu_store, app.clock)}
    progress = SweepProgress()
    views = {
        "default": DatabaseView(app.settings, caches["default"], lambda: leads["default"]),
        "eu": DatabaseView(eu_settings, caches["eu"], lambda: leads["eu"], progress),
    }
    seen = [exposition_key(views)]

    def changed() -> bool:
        seen.append(exposition_key(views))
        return seen[-1] != seen[-2]

    assert not changed()
    leads["eu"] = True
    assert changed()
    assert caches["eu"].refresh()
    assert changed()
    progress(("eu_only",), "eu_only", 1, 2)
    assert changed()
    assert caches["default"].refresh()
    assert changed()
    assert not changed()


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
    registry = build_registry(app.settings, one_database(app.settings, cache, lambda: True))
    flags = {**DEFAULT, "plan": "partition_flags_exclusive"}
    drop = {**DEFAULT, "plan": "drop_counter_columns"}
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
        registry = build_registry(
            application.settings, one_database(application.settings, cache, lambda: True, progress)
        )
        for check in ("dashboard_mismatch", "stale_partitions", "counter_writes"):
            assert (
                registry.get_sample_value("dq_check_progress_ratio", {**DEFAULT, "check": check})
                == 0
            )
        application.pipeline.run(["dashboard_mismatch", "flag_conflict", "counter_writes"])
    finally:
        application.close()
    assert 0 < min(r for r in seen if r > 0) < 0.5  # the sweep moved it range by range
    assert seen == sorted(seen)
    for check in ("dashboard_mismatch", "flag_conflict", "counter_writes"):
        assert (
            registry.get_sample_value("dq_check_progress_ratio", {**DEFAULT, "check": check}) == 1
        )
    assert (
        registry.get_sample_value(
            "dq_check_progress_ratio", {**DEFAULT, "check": "stale_partitions"}
        )
        == 0
    )


def test_the_service_serves_the_progress_gauge(tmp_path, db_url, db):
    for i in range(6):
        healthy_run(db, f"r{i}", partitions=3)
    db.execute("ANALYZE")
    svc = start_service(tmp_path, db_url, env={"DQ_SWEEP_CHUNK_ROWS": "2"})
    try:
        key = 'dq_check_progress_ratio{check="dashboard_mismatch",database="default"}'
        svc.wait_for("a finished sweep", lambda: svc.metrics().get(key) == 1)
        assert (
            'dq_check_progress_ratio{check="stale_partitions",database="default"}' in svc.metrics()
        )
    finally:
        svc.stop(signal.SIGKILL)
