"""Receivers that echo what they were sent: the route's secrets never come back out of us."""

from __future__ import annotations

import json
import logging

import pytest
from werkzeug import Request, Response

from alerts.secrets import header_secrets, url_secrets
from tests.factories import seed_race
from tests.helpers import run_cli

PATH = "/services/T0ECHO/B0ECHO/xoxEchoPathToken42"
TOKEN = "tok-9f8e7d6c5b4a"
QUERY_KEY = "qs-secret-314159"


def echoing(status: int):
    """A receiver that puts the request's path, query and Authorization header in its body."""

    def handler(request: Request) -> Response:
        sent = request.headers.get("Authorization") or request.headers.get("X-Api-Key") or "-"
        body = (
            f"no route for {request.path}?{request.query_string.decode()} "
            f"(token {sent.split()[-1]} rejected); full url {request.url}"
        )
        headers = {"Location": request.url} if 300 <= status < 400 else {}
        return Response(body, status=status, headers=headers)

    return handler


@pytest.fixture(autouse=True)
def _quiet_receiver():
    """The test receiver (werkzeug) logs each request line, path included: that log is the
    receiver's, not ours, but in-process it would reach the CLI's stderr handler."""
    receiver = logging.getLogger("werkzeug")
    level = receiver.level
    receiver.setLevel(logging.WARNING)
    yield
    receiver.setLevel(level)


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """dq-monitor's log lines; the receiver's own request log (werkzeug) is not ours."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))


def leaked(text: str) -> list[str]:
    return [s for s in (PATH, PATH.strip("/"), "xoxEchoPathToken42", TOKEN, QUERY_KEY) if s in text]


@pytest.mark.parametrize("status", [404, 401, 301, 500])
def test_alerts_test_output_and_log_hold_no_echoed_secret(
    monkeypatch, capsys, caplog, db_url, httpserver, status
):
    httpserver.expect_request(PATH).respond_with_handler(echoing(status))
    route = {
        "name": "echo", "type": "webhook",
        "url": httpserver.url_for(PATH) + f"?key={QUERY_KEY}",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    }  # fmt: skip
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([route]))
    with caplog.at_level(logging.DEBUG):
        code, out, err = run_cli(capsys, "alerts", "test")
    assert code == 1
    assert len(httpserver.log) == 1
    assert f"HTTP {status}" in out
    assert "***" in out  # the body was shown, with the echoed parts removed
    assert leaked(out + err + our_log(caplog)) == []


def test_outbox_last_error_and_service_log_hold_no_echoed_secret(
    monkeypatch, capsys, caplog, db, db_url, httpserver
):
    httpserver.expect_request(PATH).respond_with_handler(echoing(503))
    route = {
        "name": "echo", "type": "webhook", "url": httpserver.url_for(PATH),
        "headers": {"X-Api-Key": TOKEN},
    }  # fmt: skip
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([route]))
    monkeypatch.setenv("DQ_SETTLE_TIME", "0s")
    seed_race(db, "race")
    with caplog.at_level(logging.DEBUG):
        _, out, err = run_cli(capsys, "check")
    errors = [r[0] for r in db.execute("SELECT last_error FROM dq_monitor.alert_outbox")]
    assert errors
    assert all(e and "HTTP 503" in e for e in errors), errors
    assert leaked(" ".join(errors) + out + err + our_log(caplog)) == []


def test_fragments_cover_every_form_a_secret_takes():
    secrets = url_secrets("https://u:p%40ss-word@hooks.example.com/a/T0/long-segment?k=v-value-1")
    for fragment in ("p%40ss-word", "p@ss-word", "long-segment", "a/T0/long-segment",
                     "k=v-value-1", "v-value-1"):  # fmt: skip
        assert fragment in secrets, fragment
    assert "Bearer" not in header_secrets("Bearer abcdef123")
    assert "abcdef123" in header_secrets("Bearer abcdef123")


KV_PASSWORD = "S3cretKVpass"


def test_key_value_url_password_stays_out_of_runs_and_service_log(tmp_path, db_url, db, capsys,
                                                                  monkeypatch):  # fmt: skip
    from monitor.demo.embedded import free_port
    from tests.monitor.service_harness import start_service

    down = f"host=127.0.0.1 port={free_port()} user=jobs password={KV_PASSWORD} dbname=jobs"
    monkeypatch.setenv("DQ_DATABASE_URL", down)
    monkeypatch.setenv("DQ_STATE_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "1s")
    code, out, err = run_cli(capsys, "check")
    assert code == 3
    errors = [r[0] for r in db.execute("SELECT error FROM dq_monitor.check_runs")]
    assert errors
    assert all("cannot connect to the database at 127.0.0.1:" in e for e in errors), errors
    svc = start_service(tmp_path, down, env={"DQ_STATE_DATABASE_URL": db_url})
    try:
        svc.wait_for("a recorded error", lambda: db.execute(
            "SELECT count(*) FROM dq_monitor.check_runs WHERE trigger <> 'manual'"
        ).fetchone()[0] > 0)  # fmt: skip
    finally:
        svc.stop()
    errors = [r[0] for r in db.execute("SELECT error FROM dq_monitor.check_runs")]
    assert KV_PASSWORD not in " ".join(e or "" for e in errors) + out + err + svc.log()
