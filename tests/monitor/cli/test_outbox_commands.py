"""`dq-monitor alerts outbox` and `alerts retry` on a real outbox with a real receiver."""

from __future__ import annotations

import json

import pytest

from monitor.cli.main import main
from tests.factories import seed_race
from tests.helpers import FakeClock
from tests.monitor.test_alert_delivery import (
    SECRET_PATH,
    cycle,
    open_app,
    outbox,
    resolve_race,
    webhook,
)


@pytest.fixture
def clock():
    return FakeClock()


def cli(capsys, clock, *args):
    capsys.readouterr()  # what the app logged before the command is not the command's
    code = main(list(args), clock=clock)
    out, err = capsys.readouterr()
    return code, out, err


def dead_message(monkeypatch, db_url, db, clock, httpserver):
    """An app whose route answered 410 to the race's firing message: one dead message."""
    httpserver.expect_oneshot_request(SECRET_PATH).respond_with_data("channel_is_archived",
                                                                     status=410)  # fmt: skip
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    seed_race(db, "race")
    _, report = cycle(app)
    assert report.dead == 1
    return app


def test_outbox_lists_dead_and_pending_messages_with_their_errors(
    monkeypatch, db_url, db, clock, httpserver, capsys
):
    app = dead_message(monkeypatch, db_url, db, clock, httpserver)
    try:
        (dead_id,) = db.execute("SELECT id FROM dq_monitor.alert_outbox").fetchone()
        code, out, err = cli(capsys, clock, "alerts", "outbox")
        assert code == 0, err
        header, row, _, summary = out.splitlines()
        assert header.split() == ["ID", "STATUS", "ROUTE", "CHECK", "KIND", "ATTEMPTS",
                                  "CREATED", "(UTC)", "LAST", "ERROR"]  # fmt: skip
        assert row.split()[:6] == [str(dead_id), "dead", "hook", "dashboard_mismatch",
                                   "firing", "1"]  # fmt: skip
        assert row.endswith("HTTP 410: channel_is_archived")
        assert summary == "0 pending messages, 1 dead message"
        assert "s3cr3t" not in out + err
        code, out, _ = cli(capsys, clock, "alerts", "outbox", "--pending")
        assert (code, out) == (0, "no pending messages\n")
        code, out, _ = cli(capsys, clock, "alerts", "outbox", "--dead", "--format", "json")
        doc = json.loads(out)
        assert (doc["database"], doc["total"]) == ("default", 1)
        assert doc["messages"][0]["last_error"] == "HTTP 410: channel_is_archived"
        assert doc["messages"][0]["status"] == "dead"
    finally:
        app.close()


def test_retry_queues_a_dead_message_and_the_next_pass_delivers_it(
    monkeypatch, db_url, db, clock, httpserver, capsys
):
    app = dead_message(monkeypatch, db_url, db, clock, httpserver)
    try:
        (dead_id,) = db.execute("SELECT id FROM dq_monitor.alert_outbox").fetchone()
        httpserver.expect_request(SECRET_PATH).respond_with_data("ok")  # the route is fixed
        clock.advance(hours=30)  # past max_delivery_age (24h) of the message's first try
        code, out, err = cli(capsys, clock, "alerts", "retry", str(dead_id), "--by", "carol")
        assert code == 0, err
        assert out.splitlines() == [
            f"queued again: 1 message ({dead_id}); the service (or the next `dq-monitor check`) "
            "delivers them"
        ]
        assert outbox(db) == [
            ("firing", "pending", 0, "retried by carol after: HTTP 410: channel_is_archived")
        ]
        assert app.outbox.deliver_due().sent == 1  # its age counts from the retry
        assert outbox(db)[0][:2] == ("firing", "sent")
        assert json.loads(httpserver.log[-1][0].get_data())["status"] == "firing"
    finally:
        app.close()


def test_retry_leaves_a_dead_message_a_later_one_answered(
    monkeypatch, db_url, db, clock, httpserver, capsys
):
    app = dead_message(monkeypatch, db_url, db, clock, httpserver)
    try:
        httpserver.expect_request(SECRET_PATH).respond_with_data("ok")
        resolve_race(db)
        cycle(app)  # the resolved message is delivered: the dead firing one is out of date
        (dead_id, resolved_id) = [r[0] for r in db.execute(
            "SELECT id FROM dq_monitor.alert_outbox ORDER BY id").fetchall()]  # fmt: skip
        code, out, err = cli(capsys, clock, "alerts", "retry", "--all-dead")
        assert code == 0, err
        assert out.splitlines() == [
            f"left dead: {dead_id}: message {resolved_id} of the same alert and route came later",
            "nothing queued: the message left dead would be out of date",
        ]
        assert [row[:2] for row in outbox(db)] == [("firing", "dead"), ("resolved", "sent")]
    finally:
        app.close()


def test_retry_refuses_ids_that_are_not_dead_and_changes_nothing(
    monkeypatch, db_url, db, clock, httpserver, capsys
):
    app = dead_message(monkeypatch, db_url, db, clock, httpserver)
    try:
        (dead_id,) = db.execute("SELECT id FROM dq_monitor.alert_outbox").fetchone()
        code, _out, err = cli(capsys, clock, "alerts", "retry", str(dead_id), "999999")
        assert code == 2
        assert err == ("dq-monitor: error: not a dead message: 999999; `dq-monitor alerts "
                       "outbox --dead` lists them\n")  # fmt: skip
        assert outbox(db)[0][:2] == ("firing", "dead")  # the good id was not retried either
        code, _, err = cli(capsys, clock, "alerts", "retry")
        assert (code, err) == (2, "dq-monitor: error: name the dead messages to retry (IDs) or "
                                  "give --all-dead\n")  # fmt: skip
        with pytest.raises(SystemExit) as usage:  # argparse's own usage error, exit 2
            cli(capsys, clock, "alerts", "outbox", "--limit", "0")
        assert usage.value.code == 2
        assert "argument --limit: 0 is not 1 or more" in capsys.readouterr().err
    finally:
        app.close()


def test_outbox_limit_says_how_many_it_left_out(monkeypatch, db_url, db, clock, httpserver, capsys):
    app = dead_message(monkeypatch, db_url, db, clock, httpserver)
    try:
        httpserver.expect_request(SECRET_PATH).respond_with_data("nope", status=410)
        resolve_race(db)
        cycle(app)  # the resolved message dies too
        code, out, _ = cli(capsys, clock, "alerts", "outbox", "--dead", "--limit", "1")
        assert code == 0
        lines = out.splitlines()
        assert len(lines) == 4
        assert lines[1].split()[4] == "resolved"
        assert lines[-1] == "2 dead messages; showing the newest 1 (--limit)"
    finally:
        app.close()
