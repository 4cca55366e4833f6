"""`dq-monitor run` over several databases: a slow or a stopped one never holds the others."""

from __future__ import annotations

import json
import signal

import psycopg
import pytest

from monitor.demo.embedded import free_port
from tests.factories import healthy_run
from tests.monitor.service_harness import fast_config, start_service

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


@pytest.fixture
def five_more(pg_server):
    made = [pg_server.create_database() for _ in range(5)]
    yield [url for _, url in made]
    for name, _ in made:
        pg_server.drop_database(name)


def test_more_databases_than_slots_share_them_and_a_hanging_one_holds_only_its_own(
    tmp_path, db_url, db, five_more
):
    """Six databases, max_concurrent_checks 2, one hanging on a lock: the hanging one holds
    one slot, the other five share the other, and every one of them keeps being checked."""
    healthy = ["eu", "h1", "h2", "h3", "h4"]
    urls = dict(zip(healthy, [db_url, *five_more[:4]], strict=True))
    slow_url = five_more[4]
    databases = [{"name": n, "url": u} for n, u in urls.items()]
    databases.append({"name": "slow", "url": slow_url})
    holder = psycopg.connect(slow_url)
    holder.execute("LOCK TABLE public.partition_progress IN ACCESS EXCLUSIVE MODE")
    svc = start_service(tmp_path, None, config=fast_config("3s"), env={
        "DQ_DATABASES": json.dumps(databases), "DQ_STATEMENT_TIMEOUT": "5m",
        "DQ_MAX_CONCURRENT_CHECKS": "2",
    })  # fmt: skip
    monitored = [psycopg.conninfo.conninfo_to_dict(u)["dbname"] for u in [*five_more]]
    peaks: list[tuple[int, int]] = []
    try:
        svc.wait_for("the slow database's check to wait on the lock",
                     lambda: _waiting(slow_url) >= 1)  # fmt: skip
        before = {n: runs(db, f"dq_monitor_{n}", status="ok") for n in healthy}

        def every_one_ran_twice_more() -> bool:
            peaks.append(_connections(db, monitored))
            return all(runs(db, f"dq_monitor_{n}", status="ok") >= before[n] + 2 for n in healthy)

        svc.wait_for("every healthy database's scheduled runs", every_one_ran_twice_more, 90)
        assert _waiting(slow_url) >= 1  # the slow one's slot stayed taken all along
        assert runs(db, "dq_monitor_slow", status="ok") == 0
        for name in healthy:  # none waited past its misfire grace for the one free slot
            assert runs(db, f"dq_monitor_{name}", status="missed") == 0, name
        # Work at once is bounded by the two slots and the gate's read; connections open only
        # while used (one more may be a backend still exiting after its client closed it).
        assert peaks
        assert max(busy for _, busy in peaks) <= 3, peaks
        assert max(listed for listed, _ in peaks) <= 4, peaks
    finally:
        svc.stop(signal.SIGKILL)
        holder.close()


def _connections(db: psycopg.Connection, datnames: list[str]) -> tuple[int, int]:
    """dq-monitor's sessions on these databases: listed, and those not idle."""
    row = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity"
        " WHERE application_name = 'dq-monitor' AND backend_type = 'client backend'"
        " AND datname = ANY(%s)",
        (datnames,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
