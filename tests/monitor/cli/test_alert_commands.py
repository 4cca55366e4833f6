"""Alert operations through the real CLI and service: crash recovery, silences, test, heartbeat."""

from __future__ import annotations

import json
import logging
import signal
import time

import pytest

from monitor import __version__
from tests.factories import seed_race
from tests.helpers import run_cli
from tests.monitor.service_harness import start_service

HOOK = "/hooks/dq-crash-s3cr3t"


def routes_env(httpserver, path=HOOK, kind="webhook", checks=None):
    route = {"name": "hook", "type": kind, "url": httpserver.url_for(path)}
    if checks:
        route["checks"] = checks
    return json.dumps([route])


def test_crash_between_state_change_and_delivery_delivers_once_after_restart(
    tmp_path, db_url, db, httpserver
):
    httpserver.expect_request(HOOK).respond_with_data("ok")
    seed_race(db, "race")
    env = {"DQ_ALERTS__ROUTES": routes_env(httpserver, checks=["dashboard_mismatch"]),
           "DQ_SETTLE_TIME": "0s"}  # fmt: skip
    # The outbox is only read every minute: the process dies with the message queued.
    first = start_service(tmp_path, db_url, name="first",
                          env={**env, "DQ_ALERTS__DELIVERY_INTERVAL": "60s"})  # fmt: skip
    try:
        first.wait_for("a queued message", lambda: db.execute(
            "SELECT count(*) FROM dq_monitor.alert_outbox WHERE status = 'pending'"
        ).fetchone()[0] > 0)  # fmt: skip
    finally:
        first.stop(signal.SIGKILL)
    assert httpserver.log == []
    second = start_service(tmp_path, db_url, name="second",
                           env={**env, "DQ_ALERTS__DELIVERY_INTERVAL": "200ms"})  # fmt: skip
    try:
        second.wait_for("the delivery", lambda: len(httpserver.log) >= 1)
        time.sleep(1.5)  # several more delivery rounds and check runs: nothing is sent again
        assert len(httpserver.log) == 1
        rows = db.execute("SELECT check_name, kind, status FROM dq_monitor.alert_outbox").fetchall()
        assert rows == [("dashboard_mismatch", "firing", "sent")]
    finally:
        second.stop(signal.SIGKILL)


@pytest.fixture
def env(monkeypatch, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    return db_url


def test_silence_add_list_remove(env, db, capsys, httpserver, monkeypatch):
    httpserver.expect_request(HOOK).respond_with_data("ok")
    monkeypatch.setenv("DQ_ALERTS__ROUTES", routes_env(httpserver))
    code, out, _ = run_cli(capsys, "silence", "add", "dashboard_mismatch", "--for", "2h",
                           "--reason", "backfill running", "--by", "alice")  # fmt: skip
    assert code == 0
    assert "#1 dashboard_mismatch" in out
    assert "by alice (active, 2h left): backfill running" in out
    seed_race(db, "race")
    code, _, _ = run_cli(capsys, "check", "--check", "dashboard_mismatch")
    assert code == 1
    assert httpserver.log == []  # silenced: recorded, nothing sent
    code, out, _ = run_cli(capsys, "silence", "list")
    assert "#1 dashboard_mismatch" in out
    code, out, _ = run_cli(capsys, "silence", "remove", "1", "--by", "bob")
    assert code == 0
    assert "removed by bob" in out
    code, out, _ = run_cli(capsys, "silence", "list")
    assert out.strip() == "no active silences"
    code, out, _ = run_cli(capsys, "silence", "list", "--all")
    assert "removed by bob" in out
    run_cli(capsys, "check", "--check", "dashboard_mismatch")
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["silence", "add", "nope", "--for", "1h", "--reason", "x"], "unknown check 'nope'"),
        (["silence", "add", "flag_conflict", "--for", "soon", "--reason", "x"], "--for: invalid"),
        (["silence", "add", "flag_conflict", "--for", "0s", "--reason", "x"], "longer than 0s"),
        (["silence", "add", "flag_conflict", "--for", "1h", "--reason", " "], "--reason must"),
        (["silence", "remove", "42"], "no silence with id 42"),
    ],
)
def test_bad_silence_input_is_one_line_exit_2(env, capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_alerts_test_reports_the_receivers_answer(env, capsys, httpserver, monkeypatch):
    httpserver.expect_request("/ok").respond_with_data("ok")
    httpserver.expect_request("/gone").respond_with_data("channel_is_archived", status=410)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([
        {"name": "good", "type": "slack", "url": httpserver.url_for("/ok")},
        {"name": "archived", "type": "slack", "url": httpserver.url_for("/gone")},
    ]))  # fmt: skip
    code, out, _ = run_cli(capsys, "alerts", "test", "--route", "good")
    assert (code, out.strip()) == (0, "route good (slack): delivered (HTTP 200)")
    assert httpserver.log[0][0].headers["User-Agent"] == f"dq-monitor/{__version__}"
    code, out, _ = run_cli(capsys, "alerts", "test")
    assert code == 1
    assert "route archived (slack): HTTP 410: channel_is_archived" in out
    code, _, err = run_cli(capsys, "alerts", "test", "--route", "nope")
    assert code == 2
    assert "unknown route 'nope'; routes: good, archived" in err


def test_alerts_test_to_a_webhook_pages_no_one(env, capsys, httpserver, monkeypatch):
    httpserver.expect_request(HOOK).respond_with_data("ok")
    monkeypatch.setenv("DQ_ALERTS__ROUTES", routes_env(httpserver))
    code, out, _ = run_cli(capsys, "alerts", "test")
    assert (code, out.strip()) == (0, "route hook (webhook): delivered (HTTP 200)")
    body = json.loads(httpserver.log[0][0].get_data())
    (alert,) = body["alerts"]
    assert body["status"] == alert["status"] == "resolved"
    assert alert["endsAt"] == alert["startsAt"]
    assert alert["labels"] == {"alertname": "DqMonitorTest", "database": "default",
                               "check": "dq_monitor_test", "severity": "none"}  # fmt: skip
    with pytest.raises(SystemExit):
        run_cli(capsys, "alerts", "test", "--help")
    assert "status resolved" in " ".join(capsys.readouterr().out.split())


def test_alerts_test_unknown_route_is_one_line(env, capsys, httpserver, monkeypatch):
    monkeypatch.setenv("DQ_ALERTS__ROUTES", routes_env(httpserver))
    code, _, err = run_cli(capsys, "alerts", "test", "--route", "nope")
    assert len(err.strip().splitlines()) == 1
    assert code == 2
    assert "unknown route 'nope'; routes: hook" in err


def test_heartbeat_is_pinged_after_a_successful_check(env, capsys, httpserver, monkeypatch):
    httpserver.expect_request("/ping/s3cr3t", method="GET").respond_with_data("OK")
    # The receiver runs in this process; its own access log is not dq-monitor's output.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)
    monkeypatch.setenv("DQ_ALERTS__HEARTBEAT_URL", httpserver.url_for("/ping/s3cr3t"))
    code, _, err = run_cli(capsys, "check")
    assert code == 0
    assert len(httpserver.log) == 1
    assert httpserver.log[0][0].headers["User-Agent"] == f"dq-monitor/{__version__}"
    assert "s3cr3t" not in err


def test_no_alerts_queues_nothing_and_console_route_prints(env, db, capsys, monkeypatch):
    monkeypatch.setenv("DQ_ALERTS__ROUTES", '[{"name": "term", "type": "console"}]')
    seed_race(db, "race")
    run_cli(capsys, "check", "--no-alerts", "--check", "dashboard_mismatch")
    assert db.execute("SELECT count(*) FROM dq_monitor.alert_outbox").fetchone() == (0,)
    code, out, err = run_cli(capsys, "check", "--check", "dashboard_mismatch")
    assert code == 1
    assert "dashboard_mismatch is failing" in out
    assert "alert route term: delivered" in err.replace("printed", "delivered")
    code, out, err = run_cli(capsys, "check", "--format", "json", "--check", "flag_conflict")
    json.loads(out)  # console alerts never corrupt the JSON document
