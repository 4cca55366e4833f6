"""retention settings: defaults, environment and TOML, and the floor the gate sets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from config import ConfigError, GateSettings, gate_history_floor, load_settings


def test_defaults_keep_90_days_in_batches():
    settings = load_settings()
    assert settings.retention.history == timedelta(days=90)
    assert settings.retention.batch_size == 5000
    assert settings.retention.interval == timedelta(hours=1)
    # 7d clean period + 26h between full sweeps + 3 x 5m between runs + 1d slack.
    assert settings.gate_history_floor() == timedelta(days=9, hours=2, minutes=15)


def test_from_toml_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "dq.toml"
    path.write_text('[retention]\nhistory = "30d"\nbatch_size = 200\n')
    monkeypatch.setenv("DQ_RETENTION__INTERVAL", "10m")
    settings = load_settings(str(path))
    assert settings.retention.history == timedelta(days=30)
    assert settings.retention.batch_size == 200
    assert settings.retention.interval == timedelta(minutes=10)


def test_a_history_shorter_than_the_gate_reads_is_rejected_in_one_line(monkeypatch):
    monkeypatch.setenv("DQ_RETENTION__HISTORY", "9d")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    message = str(exc.value)
    assert "\n" not in message
    assert "retention.history 9d is shorter than the 9d2h15m the migration gate reads" in message
    assert "set it to at least that" in message


def test_the_floor_follows_the_gate_and_the_slowest_gating_check(monkeypatch):
    monkeypatch.setenv("DQ_GATE__REQUIRED_CLEAN_PERIOD", "100d")
    with pytest.raises(ConfigError, match=r"retention\.history 90d is shorter than the 102d2h15m"):
        load_settings()
    monkeypatch.setenv("DQ_RETENTION__HISTORY", "103d")
    assert load_settings().retention.history == timedelta(days=103)
    monkeypatch.setenv("DQ_CHECKS__FLAG_CONFLICT__CRON", "0 3 * * 1")  # weekly: 3 weeks of gaps
    with pytest.raises(ConfigError, match="shorter than the 123d2h"):
        load_settings()


def test_weaker_gate_settings_never_lower_the_floor():
    weaker = GateSettings(checks=("x",), required_clean_period=timedelta(0),
                          full_sweep_max_gap=timedelta(0), max_gap_intervals=1.5)  # fmt: skip
    assert gate_history_floor(weaker, [timedelta(minutes=5)]) == timedelta(
        days=9, hours=2, minutes=15
    )
    longer = GateSettings(checks=("x",), full_sweep_max_gap=timedelta(days=3))
    assert gate_history_floor(longer, [timedelta(hours=1)]) == timedelta(days=11, hours=3)


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("DQ_RETENTION__BATCH_SIZE", "10", "retention.batch_size: Input should be greater than"),
        ("DQ_RETENTION__BATCH_SIZE", "1000000", "retention.batch_size: Input should be less than"),
        ("DQ_RETENTION__INTERVAL", "0s", "retention.interval: Value error, must be more than 0s"),
        ("DQ_RETENTION__HISTORY", "soon", "retention.history: Value error, invalid duration"),
    ],
)
def test_bad_values_get_one_line(monkeypatch, variable, value, error):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value).startswith(error)
    assert "\n" not in str(exc.value)
