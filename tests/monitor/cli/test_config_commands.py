"""`dq-monitor config check|show|reference`: every problem listed, secrets masked, docs current."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from checks import REGISTRY
from config import Settings, load_settings
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
PREFIX = "dq-monitor: error: "
MASK = "**********"

DB_PASSWORD = "db-pass-4711"
DB_URL = f"postgresql://dq:{DB_PASSWORD}@db.example.com:5432/jobs"
STATE_URL = "postgresql://dq:state-pass-0815@state.example.com/dq"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-token-1234"
WEBHOOK_URL = "https://alerts.example.com/dq?token=webhook-token-5678"
HEADER_VALUE = "Bearer header-token-9012"
HEARTBEAT_URL = "https://hc-ping.com/heartbeat-token-3456"
SECRETS = (DB_PASSWORD, "state-pass-0815", "slack-token-1234", "webhook-token-5678",
           "header-token-9012", "heartbeat-token-3456")  # fmt: skip

ROUTES = [
    {"name": "data-team", "type": "slack", "url": SLACK_URL, "checks": ["flag_conflict"]},
    {"name": "pager", "type": "webhook", "url": WEBHOOK_URL, "min_severity": "critical",
     "headers": {"Authorization": HEADER_VALUE}},
]  # fmt: skip

CONFIG = f'''
settle_time = "90s"
state_database_url = "{STATE_URL}"

[tables]
schema_name = "jobs"

[tables.worker_runs]
name = "workers"

[checks.stale_partitions]
threshold = "45m"
enabled = false

[[checks.custom]]
name = "runs_without_partitions"
severity = "info"
description = 'Runs that never got a partition: "orphans"'
sql = """
SELECT rm.run_id
FROM run_metadata rm
WHERE NOT EXISTS (SELECT 1 FROM partition_progress pp WHERE pp.run_id = rm.run_id)
"""

[[checks.custom]]
name = "disabled_example"
enabled = false
sql = "SELECT 1 WHERE false"

[alerts]
heartbeat_url = "{HEARTBEAT_URL}"
repeat_interval = "1h30m"

[[alerts.routes]]
name = "console"
type = "console"
checks = ["runs_without_partitions", "dashboard_mismatch"]

[gate]
checks = ["dashboard_mismatch", "flag_conflict"]
required_clean_period = "14d"
'''


def write_config(tmp_path: Path, text: str = CONFIG, name: str = "dq-monitor.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems(err: str) -> list[str]:
    lines = err.splitlines()
    assert all(line.startswith(PREFIX) for line in lines), err
    return [line.removeprefix(PREFIX) for line in lines]


# --- config check ---------------------------------------------------------------------------


def without_consolidation_checks(monkeypatch) -> None:
    """The counts below predate the two consolidation checks: they stay off in these tests."""
    monkeypatch.setenv("DQ_CHECKS__CONSOLIDATION_MISSED__ENABLED", "false")
    monkeypatch.setenv("DQ_CHECKS__PREMATURE_CONSOLIDATION__ENABLED", "false")


def test_check_ok_counts_enabled_checks_and_routes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", DB_URL)
    without_consolidation_checks(monkeypatch)
    code, out, err = run_cli(capsys, "config", "check", "--config", write_config(tmp_path))
    assert (code, err) == (0, "")
    # 5 built-ins minus stale_partitions, plus one enabled custom check; one console route.
    assert out == "configuration ok: 5 checks enabled, 1 alert route\n"


def test_check_ok_with_defaults(monkeypatch, capsys):
    """Every built-in is enabled by default."""
    monkeypatch.setenv("DQ_DATABASE_URL", DB_URL)
    assert run_cli(capsys, "config", "check") == (
        0, f"configuration ok: {len(REGISTRY)} checks enabled, 0 alert routes\n", ""
    )  # fmt: skip


def test_check_lists_every_problem(tmp_path, monkeypatch, capsys):
    path = write_config(tmp_path, "sample_limit = 0\n[checks.nope]\nenabled = false\n")
    monkeypatch.setenv("DQ_SETTLE_TIME", "soon")
    monkeypatch.setenv("DQ_CHECKS__FLAG_CONFLICT__SEVERITY", "urgent")
    monkeypatch.setenv("DQ_STATE_DATABASE_URL", STATE_URL)
    bad_route = [{"name": "data-team", "type": "slack", "url": "ftp://slack-token-1234"}]
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps(bad_route))
    code, out, err = run_cli(capsys, "config", "check", "--config", path)
    assert (code, out) == (2, "")
    found = problems(err)
    expected = [
        "database_url: required (set DQ_DATABASE_URL)",
        "settle_time: Value error, invalid duration 'soon'",
        "sample_limit: Input should be greater than or equal to 1",
        "alerts.routes.0: Value error, url must start with https:// or http://",
        "checks.flag_conflict.severity: Input should be 'info', 'warning' or 'critical'",
        "checks.nope: Extra inputs are not permitted",
    ]
    assert len(found) == len(expected), found
    for line in expected:
        assert any(problem.startswith(line) for problem in found), (line, found)
    for secret in SECRETS:
        assert secret not in err


def test_check_database_url_from_the_file_is_not_reported_missing(tmp_path, capsys):
    path = write_config(tmp_path, f'database_url = "{DB_URL}"\nsample_limit = 0\n')
    code, _, err = run_cli(capsys, "config", "check", "--config", path)
    assert code == 2
    assert problems(err) == ["sample_limit: Input should be greater than or equal to 1"]
    assert DB_PASSWORD not in err


def test_check_missing_file_and_missing_database_url(tmp_path, capsys):
    code, _, err = run_cli(capsys, "config", "check", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    assert problems(err) == [
        "database_url: required (set DQ_DATABASE_URL); or databases for several",
        f"config file {tmp_path / 'nope.toml'} does not exist; check --config or DQ_CONFIG",
    ]


def test_check_as_a_process_prints_lines_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DQ_")}
    env |= {"DQ_DATABASE_URL": DB_URL, "DQ_SAMPLE_LIMIT": "-1", "DQ_ALERTS__HEARTBEAT_URL": "x",
            "DQ_ALERTS__ROUTES": json.dumps([{**ROUTES[1], "type": "slack"}])}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "config", "check"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert problems(done.stderr) == [
        "sample_limit: Input should be greater than or equal to 1",
        "alerts.routes.0: Value error, Slack incoming webhooks take no extra headers",
        "alerts.heartbeat_url: Value error, url must start with https:// or http://",
    ]
    for secret in SECRETS:
        assert secret not in done.stderr


# --- config show ----------------------------------------------------------------------------


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DQ_DATABASE_URL", DB_URL)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps(ROUTES))


@pytest.mark.usefixtures("secret_env")
@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_show_masks_every_secret(tmp_path, capsys, fmt):
    code, out, err = run_cli(
        capsys, "config", "show", "--config", write_config(tmp_path), "--format", fmt
    )
    assert (code, err) == (0, "")
    for secret in SECRETS:
        assert secret not in out
    assert "hooks.slack.com" not in out
    data = tomllib.loads(out) if fmt == "toml" else json.loads(out)
    assert data["database_url"] == MASK
    assert data["state_database_url"] == MASK  # from the file
    assert data["alerts"]["heartbeat_url"] == MASK  # from the file
    slack, webhook = data["alerts"]["routes"]
    assert (slack["name"], slack["url"]) == ("data-team", MASK)
    assert (webhook["name"], webhook["url"]) == ("pager", MASK)
    assert webhook["headers"] == {"Authorization": MASK}
    # Not secrets: shown as they are, durations as text, None values left out.
    assert data["settle_time"] == "1m30s"
    assert data["alerts"]["repeat_interval"] == "1h30m"
    assert slack["checks"] == ["flag_conflict"]
    assert "dashboard_url" not in data["alerts"]


@pytest.mark.usefixtures("secret_env")
def test_show_toml_and_json_carry_the_same_data(tmp_path, capsys):
    path = write_config(tmp_path)
    _, toml_out, _ = run_cli(capsys, "config", "show", "--config", path)
    _, json_out, _ = run_cli(capsys, "config", "show", "--config", path, "--format", "json")
    assert tomllib.loads(toml_out) == json.loads(json_out)


def test_show_toml_loads_back_as_the_same_configuration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", DB_URL)
    monkeypatch.setenv("DQ_SAMPLE_LIMIT", "7")
    original = load_settings(write_config(tmp_path))
    code, out, _ = run_cli(capsys, "config", "show", "--config", write_config(tmp_path))
    assert code == 0
    assert tomllib.loads(out)["checks"]["custom"][0]["sql"].startswith("SELECT rm.run_id\n")
    shown = write_config(tmp_path, out, name="shown.toml")
    for name in ("DQ_DATABASE_URL", "DQ_SAMPLE_LIMIT"):
        monkeypatch.delenv(name)
    # The file holds "**********" for database_url and heartbeat_url (URLs are validated when
    # the configuration loads); the real ones come from the environment.
    monkeypatch.setenv("DQ_DATABASE_URL", "postgresql://dq@db.example.com/jobs")
    monkeypatch.setenv("DQ_ALERTS__HEARTBEAT_URL", HEARTBEAT_URL)
    reloaded = load_settings(shown)
    assert reloaded.database_url is not None
    assert reloaded.database_url.get_secret_value() == "postgresql://dq@db.example.com/jobs"
    # Equal in everything but the secrets, which dump masked on both sides.
    assert reloaded.model_dump(mode="json") == original.model_dump(mode="json")
    assert reloaded.sample_limit == 7
    assert reloaded.checks.custom == original.checks.custom


def test_show_invalid_configuration_is_a_config_error(monkeypatch, capsys):
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([{**ROUTES[0], "url": "slack-token-1234"}]))
    code, out, err = run_cli(capsys, "config", "show")
    assert (code, out) == (2, "")
    assert problems(err) == [
        "alerts.routes.0: Value error, url must start with https:// or http://"
    ]
    assert "slack-token-1234" not in err


# --- config reference -----------------------------------------------------------------------


def leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every setting's dotted path, walking nested groups through their default instances."""
    paths = []
    for name, field in model.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            paths += leaf_paths(type(default), f"{prefix}{name}.")
            # The built-in checks' settings are the extra fields of the checks group.
            for extra, value in (default.model_extra or {}).items():
                paths += leaf_paths(type(value), f"{prefix}{name}.{extra}.")
            continue
        paths.append(prefix + name)
        models = [a for a in typing.get_args(field.annotation) if isinstance(a, type)
                  and issubclass(a, BaseModel)]  # fmt: skip
        # A list of groups has rows for its items' fields; an optional group, one row.
        if models and typing.get_origin(field.annotation) in (tuple, list):
            paths += leaf_paths(models[0], f"{prefix}{name}[].")
    return paths


def reference(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(capsys, "config", "reference")
    assert (code, err) == (0, "")
    return out


def reference_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 4, line
        name = cells[0].strip("`")
        assert name not in rows, f"{name} listed twice"
        rows[name] = cells
    return rows


def test_reference_covers_every_leaf_setting(capsys):
    text = reference(capsys)
    assert text.startswith("| setting | environment | default | meaning |\n|---|---|---|---|\n")
    rows = reference_rows(text)
    expected = leaf_paths(Settings)
    assert "checks.custom[].sql" in expected
    assert "alerts.routes[].headers" in expected
    assert "tables.worker_runs.finished_at" in expected
    assert set(rows) == set(expected)
    for name, (_, env, default, meaning) in rows.items():
        assert meaning, f"{name} has no description"
        assert default, name
        if "[]" in name:
            list_env = "DQ_" + name.split("[]")[0].upper().replace(".", "__")
            assert env == f"in `{list_env}`", name
        else:
            assert env.startswith(f"`DQ_{name.upper().replace('.', '__')}`"), (name, env)


def test_reference_defaults_and_secrets(capsys):
    rows = reference_rows(reference(capsys))
    default = {name: cells[2] for name, cells in rows.items()}
    assert default["database_url"] == "(required)"
    assert default["state_database_url"] == "none"
    assert default["alerts.heartbeat_url"] == "none"
    assert default["statement_timeout"] == "`30s`"
    assert default["settle_time"] == "`2m`"
    assert default["gate.required_clean_period"] == "`7d`"
    assert default["checks.dashboard_mismatch.severity"] == "`critical`"
    assert default["checks.custom"] == "`[]`"
    assert default["checks.custom[].name"] == "(required)"
    assert default["metrics_port"] == "`8477`"
    assert rows["checks.custom"][1] == "`DQ_CHECKS__CUSTOM` (JSON list)"
    assert rows["alerts.routes"][1] == "`DQ_ALERTS__ROUTES` (JSON list)"


def test_the_configuration_page_holds_the_current_reference(capsys):
    page = (ROOT / "docs" / "configuration.md").read_text()
    match = re.search(
        r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", page, re.S
    )
    assert match, "docs/configuration.md lacks the <!-- config-reference:start/end --> markers"
    assert match.group(1).strip() == reference(capsys).strip(), (
        "docs/configuration.md's reference is out of date: run `dq-monitor config reference` "
        "and paste its output between its config-reference markers"
    )
