"""The service's retention job: only the leader prunes; what it did shows in every /metrics."""

from __future__ import annotations

import signal
import time

import pytest

from alerts import SystemClock
from monitor.demo.embedded import free_port
from monitor.service.leadership import Leadership
from monitor.service.service import Service
from tests.helpers import settings_for
from tests.monitor.service_harness import start_service

OLD_RUNS = (
    "INSERT INTO dq_monitor.check_runs (check_name, started_at, finished_at, mode, status,"
    " severity, fingerprint) SELECT 'custom_old', t, t, 'incremental', 'ok', 'warning', 'f'"
    " FROM generate_series(now() - interval '200 days', now() - interval '100 days',"
    " interval '1 day') AS t UNION ALL SELECT 'custom_old', now(), now(), 'full', 'ok', 'warning',"
    " 'f'"
)


def runs(db) -> int:
    return db.execute("SELECT count(*) FROM dq_monitor.check_runs WHERE check_name = 'custom_old'"
                      ).fetchone()[0]  # fmt: skip


@pytest.fixture
def service(monkeypatch, db_url):
    settings = settings_for(monkeypatch, db_url, metrics_host="127.0.0.1",
                            metrics_port=str(free_port()))  # fmt: skip
    svc = Service(settings, SystemClock())
    svc.http.start()  # close() stops it
    yield svc
    svc.close()


def test_a_replica_that_is_not_the_leader_does_not_prune(service, db):
    db.execute(OLD_RUNS)
    other = Leadership(service.settings, SystemClock())
    try:
        assert other.poll()
        assert not service.leadership.poll()
        assert service.prune() is False
        assert runs(db) == 102
        other.release()
        # The server frees the lock when the released session's backend has ended.
        deadline = time.monotonic() + 10
        while not service.leadership.poll() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.prune() is True
        assert runs(db) == 1
    finally:
        other.release()


def test_the_leader_prunes_at_start_and_every_replica_shows_it(tmp_path, db_url, db):
    leader = start_service(tmp_path, db_url, name="leader")
    try:
        leader.wait_for("the leader's first prune, at its start",
                        lambda: leader.metrics()["dq_state_last_prune_timestamp_seconds"] > 0)
        db.execute(OLD_RUNS)
        follower = start_service(tmp_path, db_url, name="follower",
                                 env={"DQ_RETENTION__INTERVAL": "500ms"})  # fmt: skip
        try:
            # The follower's own retention job never runs; the leader's next one (hourly)
            # has not come: the old runs stay while only the follower could prune.
            last_prune = "dq_state_last_prune_timestamp_seconds"
            follower.wait_for("the leader's prune in the follower's metrics",
                              lambda: follower.metrics()[last_prune] > 0)  # fmt: skip
            before = follower.metrics()[last_prune]
            assert follower.metrics()["dq_leader"] == 0
            assert runs(db) == 102
            leader.stop(signal.SIGTERM)
            follower.wait_for("takeover and a prune", lambda: runs(db) == 1, timeout=30)
            follower.wait_for(
                "the prune in the metrics",
                lambda: follower.metrics()['dq_state_pruned_rows_total{table="check_runs"}'] >= 101,
            )
            assert follower.metrics()[last_prune] > before
            assert "pruned " in follower.log()
            assert "pruned " in leader.log()
        finally:
            follower.stop(signal.SIGKILL)
    finally:
        leader.stop(signal.SIGKILL)
