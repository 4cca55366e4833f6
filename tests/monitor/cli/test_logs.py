"""log_format: text lines or JSON objects for every command, secrets never in either."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal

import pytest

from config import ConfigError, load_settings
from monitor.cli.json_logs import JsonLines
from monitor.cli.logs import configure_from
from monitor.demo.embedded import free_port
from tests.factories import seed_race
from tests.helpers import run_cli
from tests.monitor.service_harness import start_service

PASSWORD = "s3cr3t-pa55word"
HOOK_PATH = "T0DQSECRET/B0DQSECRET/xoxbDQsecretToken42"


def routes(hook: str) -> str:
    return json.dumps([{"name": "ops", "type": "webhook", "url": hook}])


def json_lines(err: str) -> list[dict[str, object]]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no log lines"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_the_timestamp_is_the_records_own_in_utc():
    record = logging.LogRecord("dq.test", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.created = dt.datetime(2026, 3, 4, 5, 6, 7, 250000, tzinfo=dt.UTC).timestamp()
    line = json.loads(JsonLines([]).format(record))
    assert list(line)[:4] == ["timestamp", "level", "logger", "message"]
    assert line["timestamp"] == "2026-03-04T05:06:07.250000+00:00"
    assert dt.datetime.fromisoformat(line["timestamp"]).utcoffset() == dt.timedelta(0)
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "dq.test", "hello you")


def test_a_bad_log_format_is_one_line_listing_the_choices(monkeypatch, capsys):
    monkeypatch.setenv("DQ_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match=r"log_format: .*must be one of text, json"):
        load_settings()
    monkeypatch.setenv("DQ_DATABASE_URL", "postgresql://x@127.0.0.1:1/x")
    code, _, err = run_cli(capsys, "config", "check")
    assert code == 2
    assert err.strip().splitlines() == [
        "dq-monitor: error: log_format: Value error, must be one of text, json"
    ]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_secret_in_a_logged_error_or_its_traceback(monkeypatch, capsys, log_format):
    url = f"postgresql://dq:{PASSWORD}@127.0.0.1:1/dq"
    hook = f"http://127.0.0.1:1/hooks/{HOOK_PATH}"
    monkeypatch.setenv("DQ_DATABASE_URL", url)
    monkeypatch.setenv("DQ_LOG_FORMAT", log_format)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", routes(hook))
    configure_from(load_settings())
    log = logging.getLogger("dq.test")
    try:
        try:
            raise OSError(f"cannot reach {hook}")
        except OSError as exc:
            raise RuntimeError(f"connecting to {url} failed (password {PASSWORD})") from exc
    except RuntimeError:
        log.exception("delivery to %s failed", hook)
    log.warning("route %s", "ops", extra={"route": hook, "outcome": "failed"})
    err = capsys.readouterr().err
    assert PASSWORD not in err
    assert "T0DQSECRET" not in err
    assert "xoxbDQsecretToken42" not in err
    assert "Traceback" in err
    assert "RuntimeError: connecting to" in err
    assert "***" in err
    if log_format == "json":
        first, second = json_lines(err)
        assert first["message"] == "delivery to *** failed"
        assert "OSError: cannot reach ***" in str(first["exc_info"])
        assert (second["route"], second["outcome"]) == ("***", "failed")
    else:
        assert err.startswith("dq-monitor: ERROR: delivery to *** failed\n")


def test_check_logs_json_with_the_delivery_fields(monkeypatch, db_url, db, capsys):
    seed_race(db, "race")
    hook = f"http://127.0.0.1:{free_port()}/hooks/{HOOK_PATH}"  # nothing listens: retried
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_LOG_FORMAT", "json")
    monkeypatch.setenv("DQ_ALERTS__ROUTES", routes(hook))
    for severity in ("CRITICAL", "WARNING", "INFO"):
        monkeypatch.setenv(f"DQ_ALERTS__{severity}_AFTER", "1")
    code, out, err = run_cli(capsys, "check", "--check", "dashboard_mismatch")
    assert code == 1, err
    assert "dashboard_mismatch" in out  # the results stay a table on stdout
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    retries = [line for line in logged if line.get("route") == "ops"]
    assert retries, err
    assert retries[0]["outcome"] == "failed"
    assert retries[0]["level"] == "WARNING"
    assert str(retries[0]["message"]).startswith("alert to route ops: ")
    assert "T0DQSECRET" not in err + out


def test_run_logs_each_result_as_json(tmp_path, db_url, db):
    seed_race(db, "race")
    svc = start_service(tmp_path, db_url, env={"DQ_LOG_FORMAT": "json"})
    try:
        svc.wait_for("a result line", lambda: '"check": "dashboard_mismatch", "mode"' in svc.log())
    finally:
        svc.stop(signal.SIGKILL)
    lines = json_lines(svc.log())
    result = next(line for line in lines if line.get("check") == "dashboard_mismatch")
    assert result["logger"] == "monitor.service.service"
    assert result["level"] == "INFO"
    assert result["outcome"] == "violation"
    assert result["violations"] == 1
    assert result["mode"] in {"full", "incremental"}
    assert isinstance(result["duration"], float)
    # The text format's message, unchanged.
    assert result["message"] == (
        f"dashboard_mismatch: violation, 1 violation ({result['mode']}, {result['duration']:.3f}s)"
    )
    assert dt.datetime.fromisoformat(str(result["timestamp"])).utcoffset() == dt.timedelta(0)


def test_every_databases_and_standbys_password_is_a_secret_to_mask():
    from config import Settings
    from monitor.secrets import settings_secrets

    settings = Settings(databases=[
        {"name": "eu", "url": f"postgresql://dq:{PASSWORD}1@a/eu",
         "standby_urls": [f"postgresql://dq:{PASSWORD}2@b/eu"]},
        {"name": "us", "url": f"postgresql://dq:{PASSWORD}3@a/us"},
    ])  # fmt: skip
    found = settings_secrets(settings)
    for n in "123":
        assert f"{PASSWORD}{n}" in found
