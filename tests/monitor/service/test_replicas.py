"""Three `dq-monitor run` replicas over six databases: one leader each, alerts exactly once."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from pytest_httpserver import HTTPServer

from checks import REGISTRY
from monitor.service.leadership import leader_key
from tests.factories import add_partition, add_run, add_worker, seed_race
from tests.monitor.service_harness import FAST, RunningService, start_service

if TYPE_CHECKING:  # imported, pytest would try to collect the class as a test
    from tests.plugins.database import TestServer

pytestmark = pytest.mark.slow

NAMES = [f"shard_{i}" for i in range(6)]
REPLICAS = 3
CHECKS = ("dashboard_mismatch", "flag_conflict")  # both critical; the route takes only these
HOOK = "/hooks/replicas"
WAIT = 60.0  # every wait's deadline: generous for two shared cores, never a timing claim


def replica_config() -> str:
    checks = "".join(
        f'[checks.{name}]\ninterval = "2s"\n' if name in CHECKS
        else f"[checks.{name}]\nenabled = false\n"
        for name in REGISTRY
    )  # fmt: skip
    return FAST + checks


@pytest.fixture
def shards(pg_server: TestServer) -> Iterator[dict[str, str]]:
    """Six monitored databases holding the reference schema: name -> URL."""
    made = {name: pg_server.create_database() for name in NAMES}
    yield {name: url for name, (_db, url) in made.items()}
    for db_name, _url in made.values():
        pg_server.drop_database(db_name)


@pytest.fixture
def state_url(pg_server: TestServer) -> Iterator[str]:
    """The one state database every replica shares."""
    db_name, url = pg_server.create_database(schema=False)
    yield url
    pg_server.drop_database(db_name)


def ahead() -> dt.datetime:
    """A row time just past every watermark a run recorded before the row was written, so
    the next incremental run sees it (the checks read rows changed since the watermark)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


def schema(name: str) -> str:
    return f"dq_monitor_{name}"


def until(
    what: str,
    predicate: Callable[[], bool],
    live: list[RunningService],
    seen: Callable[[], object] = lambda: None,
) -> None:
    """Wait for `predicate`, failing with what `seen` returns and the replicas' logs if a live
    one exits or the deadline passes."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for replica in live:
            if replica.proc.poll() is not None:
                raise AssertionError(f"a replica exited:\n{replica.log()[-3000:]}")
        if predicate():
            return
        time.sleep(0.2)
    logs = "\n---\n".join(r.log()[-2000:] for r in live)
    raise AssertionError(f"timed out waiting for {what}; last seen {seen()}; logs:\n{logs}")


def metrics_leaders(replicas: list[RunningService]) -> dict[str, list[int]]:
    """database -> the live replicas (indexes in `replicas`) whose /metrics say dq_leader 1."""
    leaders: dict[str, list[int]] = {name: [] for name in NAMES}
    for index, replica in enumerate(replicas):
        if replica.proc.poll() is not None:
            continue  # a dead replica serves nothing
        samples = replica.metrics()
        for name in NAMES:
            if samples[f'dq_leader{{database="{name}"}}'] == 1:
                leaders[name].append(index)
    return leaders


def socket_ports(pid: int) -> set[int]:
    """The local TCP ports of process `pid`'s sockets (from /proc: which backend is whose)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def lock_leaders(
    state: psycopg.Connection, replicas: list[RunningService]
) -> dict[str, list[int | str]]:
    """database -> who holds its leader lock in pg_locks: the replica's index, or the
    backend's pid while it belongs to no replica in `replicas` (a dead one's, say)."""
    keys = {leader_key("dq_monitor", name): name for name in NAMES}
    rows = state.execute(
        "SELECT k.key, l.pid, a.client_port FROM unnest(%s::text[]) AS k(key)"
        " JOIN pg_locks AS l ON l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
        " AND l.mode = 'ExclusiveLock'"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((l.classid::int8 << 32) | l.objid::int8) = hashtextextended(k.key, 0)"
        " LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid",
        (list(keys),),
    ).fetchall()
    ports = {i: socket_ports(r.proc.pid) for i, r in enumerate(replicas) if r.proc.poll() is None}
    holders: dict[str, list[int | str]] = {name: [] for name in NAMES}
    for key, pid, port in rows:
        owner = next((i for i, p in ports.items() if port in p), f"pid {pid}")
        holders[keys[key]].append(owner)
    return holders


def one_leader_each(
    state: psycopg.Connection, replicas: list[RunningService], live: list[int]
) -> bool:
    """Every database led by exactly one live replica, its /metrics and pg_locks agreeing."""
    by_metrics = metrics_leaders(replicas)
    by_locks = lock_leaders(state, replicas)
    return all(
        len(by_metrics[n]) == 1 and by_metrics[n] == by_locks[n] and by_metrics[n][0] in live
        for n in NAMES
    )


def posts(httpserver: HTTPServer) -> list[tuple[str, str, str, str]]:
    """Every POST the receiver got: (database, check, status, Idempotency-Key)."""
    seen = []
    for request, _response in list(httpserver.log):
        body = json.loads(request.get_data())
        labels = body["alerts"][0]["labels"]
        seen.append((labels["database"], labels["check"], body["status"],
                     request.headers["Idempotency-Key"]))  # fmt: skip
    return seen


def outbox(state: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    """Every queued message of every database: (database, check, kind, status)."""
    rows = []
    for name in NAMES:
        rows += [
            (name, *row)
            for row in state.execute(
                psycopg.sql.SQL("SELECT check_name, kind, status FROM {}.alert_outbox").format(
                    psycopg.sql.Identifier(schema(name))
                )
            ).fetchall()
        ]
    return rows


def delivered(state: psycopg.Connection, expected: set[tuple[str, str, str]]) -> bool:
    """The outbox holds exactly `expected` (database, check, kind), every message sent."""
    rows = outbox(state)
    return {(d, c, k) for d, c, k, _s in rows} == expected and all(s == "sent" for *_, s in rows)


def assert_exactly_once(
    state: psycopg.Connection, httpserver: HTTPServer, expected: set[tuple[str, str, str]]
) -> None:
    """One outbox message and one POST per (database, check, status), each its own key."""
    rows = outbox(state)
    assert Counter((d, c, k) for d, c, k, _s in rows) == Counter(expected)
    got = posts(httpserver)
    status = {"firing": "firing", "resolved": "resolved"}
    assert Counter((d, c, s) for d, c, s, _k in got) == Counter(
        (d, c, status[k]) for d, c, k in expected
    )
    assert len({key for *_, key in got}) == len(got)  # no message re-sent under its own key


def test_three_replicas_share_six_databases_and_deliver_every_alert_once(
    tmp_path, pg_server, shards, state_url, httpserver
):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    route = {"name": "pager", "type": "webhook", "url": httpserver.url_for(HOOK),
             "min_severity": "critical", "checks": list(CHECKS)}  # fmt: skip
    env = {
        "DQ_DATABASES": json.dumps([{"name": n, "url": u} for n, u in shards.items()]),
        "DQ_STATE_DATABASE_URL": state_url, "DQ_MAX_CONCURRENT_CHECKS": "6",
        "DQ_SETTLE_TIME": "0s", "DQ_ALERTS__ROUTES": json.dumps([route]),
        "DQ_ALERTS__REPEAT_INTERVAL": "24h", "DQ_ALERTS__DELIVERY_INTERVAL": "500ms",
    }  # fmt: skip
    replicas: list[RunningService] = []
    conns = {name: psycopg.connect(url, autocommit=True) for name, url in shards.items()}
    state = psycopg.connect(state_url, autocommit=True)
    try:
        for i in range(REPLICAS):
            replicas.append(start_service(tmp_path, None, config=replica_config(), env=env,
                                          name=f"replica{i}"))  # fmt: skip
        live = list(range(REPLICAS))

        # Start-up: each database has one leader, the replicas about two each.
        def shares() -> Counter[int]:
            return Counter(ls[0] for ls in metrics_leaders(replicas).values() if ls)

        def shared() -> bool:
            return one_leader_each(state, replicas, live) and sorted(shares()) == live

        until("one leader per database, every replica leading some", shared, replicas,
              lambda: (metrics_leaders(replicas), lock_leaders(state, replicas)))  # fmt: skip
        assert all(1 <= n <= 3 for n in shares().values()), shares()

        # A critical defect in every database: each leader's alert reaches the receiver once.
        for conn in conns.values():
            seed_race(conn, "race", at=ahead())
        firing = {(n, "dashboard_mismatch", "firing") for n in NAMES}
        until("six firing alerts delivered", lambda: delivered(state, firing),
              replicas, lambda: (outbox(state), posts(httpserver)))  # fmt: skip
        assert_exactly_once(state, httpserver, firing)

        # A replica dies: its databases pass to the survivors, never two leaders at once.
        dead = 0
        replicas[dead].stop(signal.SIGKILL)
        live = [i for i in live if i != dead]

        def handed_over() -> bool:
            by_metrics = metrics_leaders(replicas)
            by_locks = lock_leaders(state, replicas)
            for name in NAMES:  # at every look: at most one claims it, and holds its lock
                assert len(by_metrics[name]) <= 1, (name, by_metrics)
                assert set(by_metrics[name]) <= set(by_locks[name]), (name, by_metrics, by_locks)
            return one_leader_each(state, replicas, live)

        until("the survivors to lead every database", handed_over, replicas[1:],
              lambda: (metrics_leaders(replicas), lock_leaders(state, replicas)))  # fmt: skip
        assert sorted(shares()) == live, shares()

        # A new critical defect everywhere, with the new leaders: again exactly once each.
        for conn in conns.values():
            add_run(conn, "conflict", failed_workers=1, started_at=ahead(),
                    status="completed")  # fmt: skip
            add_partition(conn, "conflict", 0, completed=True, failed=True,
                          updated_at=ahead())  # fmt: skip
            add_worker(conn, "conflict", 0, "failed", started_at=ahead())
        firing |= {(n, "flag_conflict", "firing") for n in NAMES}
        until("six more firing alerts", lambda: delivered(state, firing),
              replicas[1:], lambda: (outbox(state), posts(httpserver)))  # fmt: skip
        assert_exactly_once(state, httpserver, firing)

        # Both defects fixed: every resolved message once too.
        for conn in conns.values():
            add_worker(conn, "race", 2, "failed", started_at=ahead())
            conn.execute(
                "UPDATE partition_progress SET completed = false, updated_at = %s"
                " WHERE run_id = 'conflict'", (ahead(),),
            )  # fmt: skip
        everything = firing | {(n, c, "resolved") for n in NAMES for c in CHECKS}
        until("twelve resolved messages", lambda: delivered(state, everything),
              replicas[1:], lambda: (outbox(state), posts(httpserver)))  # fmt: skip
        assert_exactly_once(state, httpserver, everything)
    finally:
        for replica in replicas:
            replica.stop(signal.SIGKILL)
        for conn in conns.values():
            conn.close()
        state.close()
