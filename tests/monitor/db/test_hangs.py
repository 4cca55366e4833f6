"""A database that stops answering (no reset, no close): bounded checks, mark-down and shutdown.

Between the monitor and PostgreSQL sits a real loopback proxy (tests/monitor/tcp_proxy.py)
that the test tells to stall: sockets stay open and acknowledged, nothing comes back. That is
the case statement_timeout, keepalives and the TCP user timeout all miss. Every bound is
measured on the real service or the real CLI in a subprocess.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from pydantic import SecretStr

from alerts import SystemClock
from config import ConfigError, QueryTimeout, StoreError, load_settings
from monitor.app import App
from monitor.db import ConnectionSource, Watchdog
from monitor.db.watchdog import CANCEL_WAIT
from monitor.service.leadership import Leadership
from tests.monitor.service_harness import RunningService, fast_config, start_service
from tests.monitor.tcp_proxy import StallingProxy

# The single database's series keys (labels sorted, as RunningService.metrics gives them).
LEADER = 'dq_leader{database="default"}'
DATABASE_UP = 'dq_database_up{database="default"}'

STATEMENT_TIMEOUT = 2.0
GRACE = 1.0
SLACK = 1.5  # recording the run, refreshing the metrics, polling
BOUND = STATEMENT_TIMEOUT + GRACE + CANCEL_WAIT + SLACK
SHUTDOWN_TIMEOUT = 3.0

# A check that spends a second inside the server, so the stall catches it in flight.
SLOW_SQL = "SELECT 1 AS one FROM pg_sleep(1) WHERE random() < 0"
MARK = "pg_sleep(1)"
CONFIG = fast_config(
    interval="1h",
    extra=f'[[checks.custom]]\nname = "slow"\ninterval = "2s"\nsql = "{SLOW_SQL}"\n',
)
FIGURES: list[str] = []


def bounds_env(statement_timeout: float = STATEMENT_TIMEOUT) -> dict[str, str]:
    return {
        "DQ_STATEMENT_TIMEOUT": f"{statement_timeout:g}s",
        "DQ_QUERY_GRACE": f"{GRACE:g}s",
        "DQ_CONNECT_TIMEOUT": "2s",
        "DQ_SCHEDULE__SHUTDOWN_TIMEOUT": f"{SHUTDOWN_TIMEOUT:g}s",
    }


@pytest.fixture
def proxy(pg_server) -> Iterator[StallingProxy]:
    with StallingProxy.for_url(pg_server.admin_url) as p:
        yield p
        p.resume()


@pytest.fixture
def state_db(pg_server) -> Iterator[str]:
    """A database of its own for the state store (each test says whether through the proxy)."""
    name, url = pg_server.create_database(schema=False)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def services() -> Iterator[list[RunningService]]:
    started: list[RunningService] = []
    yield started
    for svc in started:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(10)


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    if FIGURES:
        print("\nmeasured:\n  " + "\n  ".join(FIGURES))


@dataclass
class InFlight:
    """A query of the monitor seen running on the server, and when it began (monotonic)."""

    started: float


def wait_for_query(url: str, text: str, timeout: float = 30) -> InFlight:
    """Wait until a dq-monitor query containing `text` has just started; its start on our
    clock. Just: a stall that begins now catches it well before its reply."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT extract(epoch FROM clock_timestamp() - query_start)::float8"
                " FROM pg_stat_activity WHERE application_name = 'dq-monitor'"
                " AND state = 'active' AND strpos(query, %s) > 0"
                " AND clock_timestamp() - query_start < interval '0.4 s'",
                (text,),
            ).fetchone()
            if row:
                return InFlight(time.monotonic() - row[0])
            time.sleep(0.02)
    raise AssertionError(f"no dq-monitor query {text!r} started")


def runs(url: str, check: str, statuses: tuple[str, ...]) -> list[tuple[str | None, str | None]]:
    """(error, error_kind) of the check's recorded runs with these statuses, oldest first."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('dq_monitor.check_runs')").fetchone()
        if not exists or exists[0] is None:
            return []  # the service has not created its schema yet
        return conn.execute(
            "SELECT error, error_kind FROM dq_monitor.check_runs WHERE check_name = %s"
            " AND status = ANY(%s) ORDER BY id",
            (check, list(statuses)),
        ).fetchall()


def first_error(url: str, check: str) -> tuple[str | None, str | None] | None:
    errors = runs(url, check, ("error",))
    return errors[0] if errors else None


def successes(url: str, check: str) -> int:
    return len(runs(url, check, ("ok", "violation")))


def until(what: str, predicate: Callable[[], bool], timeout: float = 30) -> float:
    """Poll `predicate` (a real process or server) until true; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except (OSError, AssertionError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def test_every_connection_has_client_side_bounds(monkeypatch, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "3s")
    settings = load_settings()
    expected = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5",
                "keepalives_count": "3", "tcp_user_timeout": "3000"}  # fmt: skip
    for pool_size in (0, 2):  # the CLI's single connections, the service's pools
        app = App.open(settings, clock=SystemClock(), pool_size=pool_size)
        try:
            for source in (app.pipeline.source, app.store.source):
                with source.connection() as conn:
                    params = conn.info.get_parameters()
                    assert {k: params.get(k) for k in expected} == expected, params
                    assert source.watchdog is not None
                    assert getattr(conn, "watchdog", None) is source.watchdog
        finally:
            app.close()
    leadership = Leadership(settings, SystemClock())
    try:
        assert leadership.poll()
        session = leadership.leaderships._held["default"].conn
        assert session is not None
        params = session.info.get_parameters()
        assert {k: params.get(k) for k in expected} == expected
        assert session.watchdog is not None
    finally:
        leadership.release()


@pytest.mark.parametrize(("purpose", "error"), [("state store", StoreError),
                                               ("database", QueryTimeout)])  # fmt: skip
def test_a_slow_query_on_a_live_server_is_cancelled_not_abandoned(db_url, purpose, error):
    # The state store's sessions have no statement_timeout of their own: the watchdog is what
    # ends a query stuck there, and a server that is only slow answers the cancel.
    source = ConnectionSource(
        SecretStr(db_url), purpose=purpose, connect_timeout=dt.timedelta(seconds=5),
        watchdog=Watchdog(purpose, 1.0, SystemClock()),
    )  # fmt: skip
    try:
        started = time.monotonic()
        cancelled = r"did not answer within 1s .* the query was cancelled"
        with pytest.raises(error, match=cancelled), source.connection("sleeping") as conn:
            conn.execute("SELECT pg_sleep(30)")
        assert time.monotonic() - started < 1.0 + CANCEL_WAIT
        with source.connection("asking again") as conn:  # the same connection, still good
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        source.close()


def test_a_stalled_database_is_an_error_and_down_in_bounded_time_then_recovers(
    tmp_path, db_url, state_db, proxy, services
):
    svc = start_service(
        tmp_path, proxy.url(db_url), config=CONFIG,
        env={**bounds_env(), "DQ_STATE_DATABASE_URL": state_db},
    )  # fmt: skip
    services.append(svc)
    until("a first clean run", lambda: successes(state_db, "slow") >= 1)
    assert svc.metrics()[DATABASE_UP] == 1
    query = wait_for_query(db_url, MARK)
    proxy.stall()
    seen: dict[str, float] = {}

    def both() -> bool:
        if "recorded" not in seen and first_error(state_db, "slow"):
            seen["recorded"] = time.monotonic()
        if "down" not in seen and svc.metrics()[DATABASE_UP] == 0:
            seen["down"] = time.monotonic()
        return len(seen) == 2

    until("the error and dq_database_up 0", both, timeout=BOUND + 10)
    recorded, down = seen["recorded"] - query.started, seen["down"] - query.started
    FIGURES.append(f"stalled check recorded as an error {recorded:.2f}s after it started, "
                   f"dq_database_up 0 after {down:.2f}s (bound {BOUND:g}s)")  # fmt: skip
    assert recorded <= BOUND, svc.log()[-3000:]
    assert down <= BOUND, svc.log()[-3000:]
    error, kind = first_error(state_db, "slow") or ("", "")
    assert kind == "unavailable"
    assert 'stopped answering while running check "slow"' in error, error
    assert "Traceback" not in svc.log()

    before = successes(state_db, "slow")
    proxy.resume()
    resumed = time.monotonic()
    until("a clean run after the stall", lambda: successes(state_db, "slow") > before)
    until("dq_database_up 1 again", lambda: svc.metrics()[DATABASE_UP] == 1)
    FIGURES.append(f"first clean run {time.monotonic() - resumed:.2f}s after the stall lifted")
    assert svc.proc.poll() is None


def test_sigterm_during_a_stalled_check_exits_0_within_shutdown_timeout(
    tmp_path, db_url, state_db, proxy, services
):
    # A statement_timeout far beyond the shutdown budget: only the shutdown can end this.
    svc = start_service(
        tmp_path, proxy.url(db_url), config=CONFIG,
        env={**bounds_env(statement_timeout=60), "DQ_STATE_DATABASE_URL": state_db},
    )  # fmt: skip
    services.append(svc)
    until("a first clean run", lambda: successes(state_db, "slow") >= 1)
    wait_for_query(db_url, MARK)
    proxy.stall()
    time.sleep(0.5)  # the check's reply is overdue now
    started = time.monotonic()
    code = svc.stop(signal.SIGTERM, timeout=SHUTDOWN_TIMEOUT + 5)
    took = time.monotonic() - started
    FIGURES.append(f"SIGTERM during a stalled check: exit {code} after {took:.2f}s "
                   f"(shutdown_timeout {SHUTDOWN_TIMEOUT:g}s)")  # fmt: skip
    assert took <= SHUTDOWN_TIMEOUT + 1, svc.log()[-3000:]
    assert code == 0, svc.log()[-3000:]
    assert "Traceback" not in svc.log()
    assert first_error(state_db, "slow") is None  # cancelled by the stop: not an error


def test_a_stalled_state_store_is_down_in_bounded_time_and_leadership_dropped(
    tmp_path, db_url, state_db, proxy, services
):
    svc = start_service(
        tmp_path, db_url, config=CONFIG,
        env={**bounds_env(), "DQ_STATE_DATABASE_URL": proxy.url(state_db)},
    )  # fmt: skip
    services.append(svc)
    until("a first clean run", lambda: successes(state_db, "slow") >= 1)
    assert svc.metrics()[LEADER] == 1
    proxy.stall()
    stalled = time.monotonic()
    seen: dict[str, float] = {}

    def all_down() -> bool:
        metrics = svc.metrics()
        for name, key in (("dq_state_store_up", "dq_state_store_up"),
                          ("dq_leader", LEADER)):  # fmt: skip
            if name not in seen and metrics[key] == 0:
                seen[name] = time.monotonic()
        return len(seen) == 2

    until("dq_state_store_up 0 and dq_leader 0", all_down, timeout=BOUND + 10)
    # A wait that began just before the stall, plus one metrics refresh interval (0.5s).
    limit = BOUND + 0.5
    store_down, leader_down = seen["dq_state_store_up"] - stalled, seen["dq_leader"] - stalled
    FIGURES.append(f"stalled state store: dq_state_store_up 0 after {store_down:.2f}s, "
                   f"dq_leader 0 after {leader_down:.2f}s (bound {limit:g}s)")  # fmt: skip
    assert store_down <= limit, svc.log()[-3000:]
    assert leader_down <= limit, svc.log()[-3000:]
    assert svc.get("/readyz")[0] == 503
    assert svc.get("/healthz")[0] == 200
    proxy.resume()
    until("the store back", lambda: svc.metrics()["dq_state_store_up"] == 1)
    until("leadership back", lambda: svc.metrics()[LEADER] == 1)
    before = successes(state_db, "slow")
    until("a run recorded after the stall", lambda: successes(state_db, "slow") > before)


def test_sigterm_with_the_state_store_stalled_exits_0_within_shutdown_timeout(
    tmp_path, db_url, state_db, proxy, services
):
    svc = start_service(
        tmp_path, db_url, config=CONFIG,
        env={**bounds_env(statement_timeout=60), "DQ_STATE_DATABASE_URL": proxy.url(state_db)},
    )  # fmt: skip
    services.append(svc)
    until("a first clean run", lambda: successes(state_db, "slow") >= 1)
    wait_for_query(db_url, MARK)
    proxy.stall()  # the check's result will not be recorded; the leader's polls hang too
    time.sleep(1.5)
    started = time.monotonic()
    code = svc.stop(signal.SIGTERM, timeout=SHUTDOWN_TIMEOUT + 5)
    took = time.monotonic() - started
    FIGURES.append(f"SIGTERM with the state store stalled: exit {code} after {took:.2f}s "
                   f"(shutdown_timeout {SHUTDOWN_TIMEOUT:g}s)")  # fmt: skip
    log = svc.log()
    assert took <= SHUTDOWN_TIMEOUT + 1, log[-3000:]
    assert code == 0, log[-3000:]
    assert "Traceback" not in log
    abandoned = [line for line in log.splitlines() if "abandoned" in line]
    assert len(abandoned) == 1, log[-3000:]
    assert "WARNING" in abandoned[0]
    assert "shutdown_timeout 3s" in abandoned[0]


def test_check_against_a_stalled_database_exits_3_with_one_line(
    tmp_path, db_url, state_db, proxy
):
    config = tmp_path / "c.toml"
    # "after" would wait connect_timeout for a connection through the stalled proxy; it
    # shares the first check's error instead.
    config.write_text(f'[[checks.custom]]\nname = "slow"\nsql = "{SLOW_SQL}"\n'
                      '[[checks.custom]]\nname = "after"\nsql = "SELECT 1 WHERE false"\n')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DQ_")},
        **bounds_env(), "DQ_DATABASE_URL": proxy.url(db_url), "DQ_STATE_DATABASE_URL": state_db,
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "check", "--check", "slow", "--check", "after",
         "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        query = wait_for_query(db_url, MARK)
        proxy.stall()
        out, err = proc.communicate(timeout=BOUND + 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    took = time.monotonic() - query.started
    FIGURES.append(f"`dq-monitor check` on a stalled database: exit {proc.returncode} "
                   f"{took:.2f}s after its query started (bound {BOUND:g}s)")  # fmt: skip
    assert took <= BOUND, err
    assert proc.returncode == 3, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("dq-monitor: error: the database at ")
    assert 'stopped answering while running check "slow"' in lines[0]
    assert "query_grace" in lines[0]
    recorded = (lines[0].removeprefix("dq-monitor: error: "), "unavailable")
    assert first_error(state_db, "slow") == recorded
    assert first_error(state_db, "after") == recorded


def test_query_grace_is_a_setting(monkeypatch):
    monkeypatch.setenv("DQ_QUERY_GRACE", "7s")
    assert load_settings().query_grace == dt.timedelta(seconds=7)
    monkeypatch.setenv("DQ_QUERY_GRACE", "0s")
    with pytest.raises(ConfigError, match="at least 1s"):
        load_settings()
