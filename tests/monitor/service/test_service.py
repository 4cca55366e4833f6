"""`dq-monitor run` as a real process: endpoints, metrics, leadership, outages and shutdown."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from checks import REGISTRY
from tests.factories import seed_race
from tests.monitor.service_harness import fast_config, start_service

# The single database's series keys (labels sorted, as RunningService.metrics gives them).
LEADER = 'dq_leader{database="default"}'
DATABASE_UP = 'dq_database_up{database="default"}'
MISMATCH = '{check="dashboard_mismatch",database="default"}'

CHECKS = REGISTRY.names


@pytest.fixture
def service(tmp_path, db_url, db):
    seed_race(db, "race")
    svc = start_service(tmp_path, db_url)
    yield svc
    svc.stop(signal.SIGKILL)


def test_endpoints(service):
    assert service.get("/healthz") == (200, "ok\n")
    assert service.get("/readyz") == (200, "ok\n")
    status, page = service.get("/")
    assert status == 200
    assert "<a href='/metrics'>" in page
    assert "dashboard_mismatch" in page
    assert service.get("/nope")[0] == 404


def test_metrics_show_the_seeded_defect_and_every_series(service):
    key = f"dq_check_violations{MISMATCH}"
    service.wait_for("a result", lambda: service.metrics()[key] == 1)
    metrics = service.metrics()
    for check in CHECKS:
        label = f'{{check="{check}",database="default"}}'
        for name in ("dq_check_violations", "dq_check_status", "dq_check_runs_total",
                     "dq_check_errors_total", "dq_check_last_run_timestamp_seconds",
                     "dq_check_last_success_timestamp_seconds", "dq_check_interval_seconds",
                     "dq_check_duration_seconds_count"):  # fmt: skip
            assert f"{name}{label}" in metrics, f"{name}{label}"
    assert metrics[f"dq_check_status{MISMATCH}"] == 1
    assert metrics['dq_check_status{check="flag_conflict",database="default"}'] == 0
    assert metrics['dq_check_interval_seconds{check="flag_conflict",database="default"}'] == 1
    for name in (DATABASE_UP, "dq_state_store_up",
                 LEADER):  # fmt: skip
        assert metrics[name] == 1, name
    assert any(k.startswith("dq_build_info{") for k in metrics)
    assert not any("_created" in k for k in metrics)
    text = service.exposition()
    assert (
        "# HELP dq_check_violations Violations found by the check's latest run. Cached from" in text
    )
    assert "a scrape never queries the monitored database" in text


def test_series_exist_with_zero_before_any_run(tmp_path, db_url):
    # A 1-hour interval and a state store the first run has not written yet.
    svc = start_service(tmp_path, db_url, config=fast_config(interval="1h"))
    try:
        metrics = svc.metrics()
        for check in CHECKS:
            assert f'dq_check_violations{{check="{check}",database="default"}}' in metrics
    finally:
        svc.stop(signal.SIGKILL)


def test_sigterm_during_a_long_check_exits_0_within_10_seconds(tmp_path, db_url, db):
    config = fast_config(extra='[[checks.custom]]\nname = "slow"\nsql = "SELECT pg_sleep(60)"\n')
    svc = start_service(tmp_path, db_url, config=config, env={"DQ_STATEMENT_TIMEOUT": "60s"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        active = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE strpos(query, 'pg_sleep(60)') > 0"
            " AND state = 'active' AND application_name = 'dq-monitor'"
        ).fetchone()
        if active and active[0]:
            break
        time.sleep(0.1)
    started = time.monotonic()
    assert svc.stop(signal.SIGTERM, timeout=10) == 0, svc.log()
    assert time.monotonic() - started < 10
    assert "Traceback" not in svc.log()
    recorded = db.execute(
        "SELECT count(*) FROM dq_monitor.check_runs WHERE check_name = 'slow'"
    ).fetchone()
    assert recorded == (0,)  # cancelled by shutdown: not an error to record


def test_overlapping_run_is_recorded(tmp_path, db_url, db):
    config = fast_config(
        interval="1h",
        extra='[[checks.custom]]\nname = "slow"\ninterval = "1s"\nsql = "SELECT pg_sleep(3)"\n',
    )
    svc = start_service(tmp_path, db_url, config=config)
    overlaps = 'dq_check_overlapping_runs_total{check="slow",database="default"}'
    try:
        svc.wait_for(
            "an overlap",
            lambda: svc.metrics()[overlaps] >= 1,
        )
        rows = db.execute(
            "SELECT status FROM dq_monitor.check_runs WHERE check_name = 'slow'"
            " AND status = 'overlap'"
        ).fetchall()
        assert rows
    finally:
        svc.stop(signal.SIGKILL)


def test_two_replicas_one_leader_and_takeover(tmp_path, db_url, db):
    seed_race(db, "race")
    a = start_service(tmp_path, db_url, name="a")
    b = start_service(tmp_path, db_url, name="b")
    try:
        a.wait_for("a leader", lambda: a.metrics()[LEADER] + b.metrics()[LEADER] == 1)
        leader, follower = (a, b) if a.metrics()[LEADER] == 1 else (b, a)
        time.sleep(1.5)  # several leadership polls: still exactly one leader
        assert leader.metrics()[LEADER] == 1
        assert follower.metrics()[LEADER] == 0
        hosts = {h for (h,) in db.execute("SELECT DISTINCT host FROM dq_monitor.check_runs")}
        assert hosts == {f"{h.split(':')[0]}:{leader.proc.pid}" for h in hosts}
        # Both replicas serve the same results from the state store.
        key = f"dq_check_violations{MISMATCH}"
        follower.wait_for("the follower's copy", lambda: follower.metrics()[key] == 1)
        leader.proc.kill()
        leader.proc.wait(5)
        follower.wait_for("takeover", lambda: follower.metrics()[LEADER] == 1, timeout=15)
        runs_before = db.execute(
            "SELECT count(*) FROM dq_monitor.check_runs WHERE host LIKE %s",
            (f"%:{follower.proc.pid}",),
        ).fetchone()[0]
        follower.wait_for(
            "the new leader's runs",
            lambda: (
                db.execute(
                    "SELECT count(*) FROM dq_monitor.check_runs WHERE host LIKE %s",
                    (f"%:{follower.proc.pid}",),
                ).fetchone()[0]
                > runs_before
            ),
        )
    finally:
        for svc in (a, b):
            svc.stop(signal.SIGKILL)


def test_monitored_database_restart_is_survived(tmp_path, private_pg, pg_server):
    with psycopg.connect(private_pg.url(), autocommit=True) as conn:
        seed_race(conn, "race")
    name, state_url = pg_server.create_database(schema=False)
    svc = start_service(tmp_path, private_pg.url(), env={"DQ_STATE_DATABASE_URL": state_url})
    key = f"dq_check_violations{MISMATCH}"
    try:
        svc.wait_for("a result", lambda: svc.metrics()[key] == 1)
        private_pg.stop("immediate")
        status = f"dq_check_status{MISMATCH}"
        # At most max_concurrent_checks run at once: the check may fail a little after the
        # first one that saw the database go.
        svc.wait_for(
            "database down", lambda: (m := svc.metrics())[DATABASE_UP] == 0 and m[status] == 2
        )
        assert svc.metrics()[key] == 1  # the last known count stays
        private_pg.start()
        svc.wait_for("recovery", lambda: svc.metrics()[DATABASE_UP] == 1, timeout=30)
        svc.wait_for(
            "a clean run", lambda: svc.metrics()[f"dq_check_status{MISMATCH}"] == 1
        )
        assert svc.proc.poll() is None
    finally:
        svc.stop(signal.SIGKILL)
        pg_server.drop_database(name)


def test_state_store_outage_keeps_serving_last_metrics(tmp_path, private_pg, db_url, db):
    seed_race(db, "race")
    svc = start_service(tmp_path, db_url, env={"DQ_STATE_DATABASE_URL": private_pg.url("postgres")})
    key = f"dq_check_violations{MISMATCH}"
    try:
        svc.wait_for("a result", lambda: svc.metrics()[key] == 1)
        private_pg.stop("immediate")
        svc.wait_for("store down", lambda: svc.metrics()["dq_state_store_up"] == 0)
        assert svc.metrics()[key] == 1
        assert svc.get("/readyz")[0] == 503
        assert svc.get("/healthz")[0] == 200
        runs = svc.metrics()[f"dq_check_runs_total{MISMATCH}"]
        private_pg.start()
        svc.wait_for("store back", lambda: svc.metrics()["dq_state_store_up"] == 1, timeout=30)
        svc.wait_for(
            "catching up",
            lambda: svc.metrics()[f"dq_check_runs_total{MISMATCH}"] > runs,
            timeout=30,
        )
        assert svc.get("/readyz")[0] == 200
    finally:
        svc.stop(signal.SIGKILL)


def test_bad_metrics_port_is_a_usage_error():
    script = Path(sys.executable).parent / "dq-monitor"  # the installed console script
    result = subprocess.run(
        [str(script), "run", "--metrics-port", "70000"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "70000 is not between 1 and 65535" in result.stderr


# The gate metrics' labels of migration 005's plan.
DROP = '{database="default",plan="drop_counter_columns"}'
FLAGS = '{database="default",plan="partition_flags_exclusive"}'


def test_gate_metrics(tmp_path, db_url, db):
    db.execute("CREATE EXTENSION pg_stat_statements")
    config = fast_config(
        extra='[gate]\nrequired_clean_period = "0s"\naccept_weaker_settings = true\n'
        'evaluate_interval = "500ms"\n'
    )
    svc = start_service(tmp_path, db_url, config=config)
    try:
        svc.wait_for("an open gate", lambda: svc.metrics()[f"dq_gate_open{DROP}"] == 1)
        assert svc.metrics()[f"dq_gate_required_seconds{DROP}"] == 0
        status, page = svc.get("/")  # the page reads the same snapshot, at least as fresh
        assert status == 200
        assert "OPEN: the deprecated counters may be dropped" in page  # the published headline
        db.execute("CREATE VIEW failures AS SELECT run_id, failed_workers FROM run_metadata")
        svc.wait_for("a closed gate", lambda: svc.metrics()[f"dq_gate_open{DROP}"] == 0)
        assert svc.metrics()[f"dq_gate_clean_since_timestamp_seconds{DROP}"] == 0
        # The view on a counter holds migration 005 only: the constraint plan stays open.
        assert svc.metrics()[f"dq_gate_open{FLAGS}"] == 1
    finally:
        svc.stop(signal.SIGKILL)
