"""Custom checks from the config file: rows returned are violations; they run read-only."""

from __future__ import annotations

import json

import pytest

from checks import Status
from tests.factories import add_run
from tests.helpers import run_checks, run_json

CONFIG = """
[[checks.custom]]
name = "runs_without_status"
severity = "info"
description = "Runs whose status is empty"
sql = "SELECT run_id, status FROM run_metadata WHERE status = '' ORDER BY run_id;"

[[checks.custom]]
name = "percent_and_braces"
sql = "SELECT run_id FROM run_metadata WHERE run_id LIKE 'x%' AND '{}' = '{}'"

[[checks.custom]]
name = "disabled_example"
enabled = false
sql = "SELECT 1"
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch, db_url):
    path = tmp_path / "dq-monitor.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    return str(path)


def test_rows_are_violations_with_their_columns_as_samples(config_file, db, capsys):
    for run in ("a", "b", "xyz"):
        add_run(db, run)
    db.execute("UPDATE run_metadata SET status = '' WHERE run_id IN ('a', 'b')")
    code, payload = run_json(capsys, "--config", config_file)
    assert code == 1
    results = {r["check"]: r for r in payload["results"]}
    assert "disabled_example" not in results
    custom = results["runs_without_status"]
    assert custom["status"] == "violation"
    assert custom["severity"] == "info"
    assert custom["mode"] == "full"
    assert custom["violations"] == 2
    assert custom["samples"] == [{"run_id": "a", "status": ""}, {"run_id": "b", "status": ""}]
    assert results["percent_and_braces"]["violations"] == 1


def test_disabled_check_runs_when_named(config_file, capsys):
    code, payload = run_json(capsys, "--config", config_file, "--check", "disabled_example")
    assert code == 1
    assert payload["results"][0]["violations"] == 1


def test_custom_sql_cannot_write(tmp_path, monkeypatch, db_url, db):
    path = tmp_path / "c.toml"
    path.write_text(
        '[[checks.custom]]\nname = "sneaky"\nsql = "SELECT nextval(\'worker_runs_id_seq\')"\n'
    )
    add_run(db, "keep")
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    from config import load_settings

    result = run_checks(load_settings(path), "sneaky")["sneaky"]
    assert result.status is Status.ERROR
    assert "read-only transaction" in (result.error or "")
    assert "25006" in (result.error or "")
    assert db.execute("SELECT is_called FROM worker_runs_id_seq").fetchone() == (False,)


NON_FINITE_SQL = (
    "SELECT v.label, v.ratio, v.amount, v.ratios FROM (VALUES"
    " ('nan', 'NaN'::float8, 'NaN'::numeric, ARRAY['NaN'::float8, 1.5]),"
    " ('inf', 'Infinity'::float8, 'Infinity'::numeric, ARRAY['Infinity'::float8]),"
    " ('-inf', '-Infinity'::float8, '-Infinity'::numeric, ARRAY['-Infinity'::float4]),"
    " ('plain', 2.5::float8, 3::numeric, ARRAY[0.25::float8])"
    ") AS v (label, ratio, amount, ratios) ORDER BY v.label"
)


def test_non_finite_numbers_are_recorded_as_strings(monkeypatch, db_url, db, capsys):
    # JSON has no NaN or Infinity: psycopg's Json would write them and PostgreSQL refuse them.
    checks = [{"name": "ratios", "sql": NON_FINITE_SQL}]
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_CHECKS__CUSTOM", json.dumps(checks))
    code, payload = run_json(capsys, "--check", "ratios", "--no-alerts")
    (result,) = payload["results"]
    assert (code, result["status"], result["error"]) == (1, "violation", None)
    assert result["samples"] == [
        {"label": "-inf", "ratio": "-Infinity", "amount": "-Infinity", "ratios": ["-Infinity"]},
        {"label": "inf", "ratio": "Infinity", "amount": "Infinity", "ratios": ["Infinity"]},
        {"label": "nan", "ratio": "NaN", "amount": "NaN", "ratios": ["NaN", 1.5]},
        {"label": "plain", "ratio": 2.5, "amount": 3, "ratios": [0.25]},
    ]
    assert "NaN, Infinity and -Infinity are recorded as strings" in result["note"]
    (stored,) = db.execute(
        "SELECT samples::text FROM dq_monitor.check_runs WHERE check_name = 'ratios'"
    ).fetchone()
    assert '"ratio": "NaN"' in stored
