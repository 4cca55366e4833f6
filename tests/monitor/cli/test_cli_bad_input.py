"""Bad input through the real CLI: one `dq-monitor: error:` line and exit 2, no traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_cli

PREFIX = "dq-monitor: error: "
# Never reached: every case below fails while the configuration loads.
UNREACHABLE_DB = "postgresql://dq@127.0.0.1:1/jobs"
SECRET = "hook-s3cr3t-token"


def one_error_line(code: int, out: str, err: str) -> str:
    assert (code, out) == (2, ""), (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert "Traceback" not in err
    return lines[0].removeprefix(PREFIX)


def config_file(tmp_path: Path, kind: str) -> str:
    path = tmp_path / "dq-monitor.toml"
    if kind == "not utf-8":
        path.write_bytes(b"\xff\xfe")
    elif kind == "not a directory":  # an OSError other than "missing" or "permission denied"
        path.write_text("")
        path = path / "inner.toml"
    elif kind == "unreadable":
        path.write_text("sample_limit = 3\n")
        path.chmod(0)
    return str(path)


FILE_CASES = [
    ("not utf-8", "is not UTF-8 text (byte 0xff at offset 0); TOML files must be UTF-8"),
    ("missing", "does not exist; check --config or DQ_CONFIG"),
    ("not a directory", "cannot be read: Not a directory"),
    pytest.param(
        "unreadable", "cannot be read: permission denied",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file"),
    ),
]  # fmt: skip


@pytest.mark.parametrize("command", [["config", "check"], ["check"], ["config", "show"]])
@pytest.mark.parametrize(("kind", "message"), FILE_CASES)
def test_an_unusable_config_file(tmp_path, monkeypatch, capsys, command, kind, message):
    monkeypatch.setenv("DQ_DATABASE_URL", UNREACHABLE_DB)
    path = config_file(tmp_path, kind)
    line = one_error_line(*run_cli(capsys, *command, "--config", path))
    assert line == f"config file {path} {message}"


ENV_CASES = [
    ({"DQ_SETTLE_TIME": "36500000d"},
     "settle_time: Value error, a duration must be at most 36500d (100 years)"),
    ({"DQ_ALERTS__MAX_DELIVERY_AGE": "1" + "0" * 400 + "s"},
     "alerts.max_delivery_age: Value error, a duration must be at most 36500d (100 years)"),
    ({"DQ_STATEMENT_TIMEOUT": "30d"},  # PostgreSQL's limit is 2**31 - 1 ms
     "statement_timeout: Value error, must be at most 24d"),
    ({"DQ_ALERTS__ROUTES": '[{"name": "hook", "type": "webhook", "url": '},
     "DQ_ALERTS__ROUTES: not valid JSON (Expecting value: line 1 column 45 (char 44)); "
     "list and table settings in the environment are written as JSON"),
    ({"DQ_ALERTS__ROUTES": json.dumps(
        [{"name": "hook", "type": "webhook", "url": f"http://[::1/{SECRET}"}])},
     "alerts.routes.0: Value error, url has no parseable host and port "
     "(an IPv6 address needs its [brackets])"),
    ({"DQ_ALERTS__HEARTBEAT_URL": f"http://[::1/{SECRET}"},
     "alerts.heartbeat_url: Value error, url has no parseable host and port "
     "(an IPv6 address needs its [brackets])"),
]  # fmt: skip


# Not `run`: were the setting accepted, the service would start and wait for the database.
@pytest.mark.parametrize("command", [["config", "check"], ["check"], ["alerts", "test"]])
@pytest.mark.parametrize(("env", "message"), ENV_CASES)
def test_a_bad_setting_in_the_environment(monkeypatch, capsys, command, env, message):
    monkeypatch.setenv("DQ_DATABASE_URL", UNREACHABLE_DB)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, *command)
    assert one_error_line(code, out, err) == message
    assert SECRET not in err


def test_a_bad_duration_in_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", UNREACHABLE_DB)
    path = tmp_path / "dq-monitor.toml"
    path.write_text("settle_time = inf\n[schedule]\nfull_sweep_interval = nan\n")
    code, out, err = run_cli(capsys, "config", "check", "--config", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        PREFIX + "settle_time: Value error, invalid duration inf: "
        "use a number with a unit, e.g. 30s, 2m, 36h, 7d",
        PREFIX + "schedule.full_sweep_interval: Value error, invalid duration nan: "
        "use a number with a unit, e.g. 30s, 2m, 36h, 7d",
    ]


def test_every_bad_json_variable_is_named(monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", UNREACHABLE_DB)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", "[")
    monkeypatch.setenv("DQ_CHECKS__CUSTOM", f"{SECRET}")
    code, out, err = run_cli(capsys, "config", "check")
    assert (code, out) == (2, "")
    names = [line.removeprefix(PREFIX).split(":")[0] for line in err.splitlines()]
    assert names == ["DQ_ALERTS__ROUTES", "DQ_CHECKS__CUSTOM"]
    assert SECRET not in err


@pytest.mark.parametrize("flag", [["silence", "add", "x", "--reason", "r", "--for"],
                                  ["demo", "--duration"]])  # fmt: skip
def test_an_overflowing_duration_on_the_command_line(monkeypatch, capsys, flag):
    monkeypatch.setenv("DQ_DATABASE_URL", UNREACHABLE_DB)
    line = one_error_line(*run_cli(capsys, *flag, "36500000d"))
    assert line.endswith("a duration must be at most 36500d (100 years)")
