"""Settings: defaults, environment over file, durations, and one clear line per problem."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config import ConfigError, Severity, format_duration, load_settings, parse_duration


def write(tmp_path, text: str) -> str:
    path = tmp_path / "dq-monitor.toml"
    path.write_text(text)
    return str(path)


def test_defaults():
    settings = load_settings()
    assert settings.statement_timeout == timedelta(seconds=30)
    assert settings.settle_time == timedelta(minutes=2)
    assert settings.sample_limit == 20
    assert settings.state_schema == "dq_monitor"
    assert settings.checks.stale_partitions.threshold == timedelta(minutes=30)
    assert settings.checks.dashboard_mismatch.severity is Severity.CRITICAL
    assert settings.tables.partition_progress.name == "partition_progress"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, 'settle_time = "5m"\nsample_limit = 7\n[tables]\nschema_name = "jobs"\n')
    monkeypatch.setenv("DQ_SETTLE_TIME", "90s")
    monkeypatch.setenv("DQ_TABLES__WORKER_RUNS__NAME", "workers")
    settings = load_settings(path)
    assert settings.settle_time == timedelta(seconds=90)
    assert settings.sample_limit == 7
    assert settings.tables.schema_name == "jobs"
    assert settings.tables.worker_runs.name == "workers"


def test_config_file_from_dq_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DQ_CONFIG", write(tmp_path, "sample_limit = 3\n"))
    assert load_settings().sample_limit == 3


def test_custom_checks_from_environment_json(monkeypatch):
    monkeypatch.setenv("DQ_CHECKS__CUSTOM", '[{"name": "mine", "sql": "SELECT 1"}]')
    (custom,) = load_settings().checks.custom
    assert custom.name == "mine"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", 30), ("2m", 120), ("1h30m", 5400), ("7d", 604800), ("0s", 0), ("36h", 129600),
        ("500ms", 0.5), ("45", 45), (12, 12),
    ],
)  # fmt: skip
def test_durations(text, expected):
    assert parse_duration(text).total_seconds() == expected


def test_duration_round_trip():
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DQ_SETTLE_TIME": "soon"}, "settle_time: Value error, invalid duration 'soon'"),
        ({"DQ_STATEMENT_TIMEOUT": "0s"}, "statement_timeout: Value error, must be at least 1s"),
        ({"DQ_SAMPLE_LIMIT": "0"}, "sample_limit: Input should be greater than or equal to 1"),
        ({"DQ_CHECKS__NOPE__ENABLED": "false"}, "checks.nope: Extra inputs are not permitted"),
        ({"DQ_CHECKS__FLAG_CONFLICT__SEVERITY": "urgent"}, "checks.flag_conflict.severity:"),
        ({"DQ_TABLES__RUN_METADATA__NAME": ""}, "tables.run_metadata.name: Value error, must not"),
        ({"DQ_LOG_LEVEL": "loud"}, "log_level: Value error, must be one of"),
    ],
)
def test_bad_settings_name_the_field(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)


def test_every_problem_is_listed_one_per_line(monkeypatch):
    monkeypatch.setenv("DQ_SAMPLE_LIMIT", "x")
    monkeypatch.setenv("DQ_SETTLE_TIME", "y")
    with pytest.raises(ConfigError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert all(": " in line for line in lines)


def test_input_values_are_not_echoed(monkeypatch):
    monkeypatch.setenv("DQ_SAMPLE_LIMIT", "s3cr3t-value")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "s3cr3t" not in str(info.value)


def test_database_url_is_secret(monkeypatch):
    monkeypatch.setenv("DQ_DATABASE_URL", "postgresql://u:hunter2@db/x")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value().endswith("@db/x")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[checks.custom]]\nname = "Bad-Name"\nsql = "SELECT 1"\n', "checks.custom.0.name"),
        ('[[checks.custom]]\nname = "flag_conflict"\nsql = "SELECT 1"\n', "already used"),
        ('[[checks.custom]]\nname = "two"\nsql = "SELECT 1; SELECT 2"\n', "single statement"),
        ('[[checks.custom]]\nname = "x"\n', "checks.custom.0.sql: Field required"),
        ('[checks.stale_partitions]\nthreshold = "0s"\n', "must be longer than 0s"),
    ],
)
def test_bad_file_settings(tmp_path, toml, message):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, toml))
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; check --config or DQ_CONFIG"):
        load_settings(tmp_path / "absent.toml")


def test_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(write(tmp_path, "sample_limit = = 3"))
