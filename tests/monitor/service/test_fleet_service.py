"""`dq-monitor run` over several databases: a slow or a stopped one never holds the others."""

from __future__ import annotations

import json
import signal

import psycopg
import pytest

from monitor.demo.embedded import free_port
from tests.factories import healthy_run
from tests.monitor.service_harness import start_service

CHECK = "stale_partitions"


def runs(db: psycopg.Connection, schema: str, *, status: str | None = None) -> int:
    row = db.execute(
        f"SELECT count(*) FROM {schema}.check_runs WHERE check_name = %s"
        " AND (%s::text IS NULL OR status = %s)",
        (CHECK, status, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def slow_url(pg_server):
    name, url = pg_server.create_database()
    yield url
    pg_server.drop_database(name)


def test_a_slow_and_a_stopped_database_never_delay_the_healthy_ones_checks(
    tmp_path, db_url, db, slow_url
):
    healthy_run(db, "fine")
    gone = f"postgresql://dq@127.0.0.1:{free_port()}/gone"  # nothing listens there
    databases = [{"name": "eu", "url": db_url}, {"name": "slow", "url": slow_url},
                 {"name": "gone", "url": gone}]  # fmt: skip
    # The slow database's checks wait on this lock for as long as the test holds it.
    holder = psycopg.connect(slow_url)
    holder.execute("LOCK TABLE public.partition_progress IN ACCESS EXCLUSIVE MODE")
    svc = start_service(tmp_path, None, env={
        "DQ_DATABASES": json.dumps(databases), "DQ_STATEMENT_TIMEOUT": "5m",
        "DQ_MAX_CONCURRENT_CHECKS": "3",
    })  # fmt: skip
    try:
        svc.wait_for("the slow database's check to wait on the lock",
                     lambda: _waiting(slow_url) >= 1)  # fmt: skip
        svc.wait_for("the stopped database's errors", lambda: runs(db, "dq_monitor_gone") >= 2)
        before = runs(db, "dq_monitor_eu", status="ok")
        # The slow database's one check slot stays taken; eu's checks keep their schedule.
        svc.wait_for(
            "eu's scheduled runs", lambda: runs(db, "dq_monitor_eu", status="ok") >= before + 4
        )
        assert _waiting(slow_url) >= 1  # still stuck all along
        assert runs(db, "dq_monitor_slow", status="ok") == 0
        errors = db.execute(
            "SELECT DISTINCT error_kind FROM dq_monitor_gone.check_runs WHERE status = 'error'"
        ).fetchall()
        assert errors == [("unavailable",)]
    finally:
        svc.stop(signal.SIGKILL)
        holder.close()


def _waiting(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'dq-monitor' AND wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])
