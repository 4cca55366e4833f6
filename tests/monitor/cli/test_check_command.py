"""`dq-monitor check` end to end on a real PostgreSQL: results, JSON contract, exit codes."""

from __future__ import annotations

import pytest

from checks import REGISTRY
from tests.factories import healthy_run, seed_race
from tests.helpers import by_check, run_cli, run_json


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> str:
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    return db_url


def test_clean_database_exits_0_with_every_check_ok(env, db, capsys):
    healthy_run(db, "r1", failed=[1])
    code, payload = run_json(capsys)
    assert code == 0
    results = by_check(payload)
    assert set(results) == set(REGISTRY)
    for result in results.values():
        assert result["status"] == "ok", result
        assert result["violations"] == 0
        assert result["error"] is None
        assert result["mode"] in {"incremental", "full"}
        assert isinstance(result["duration_seconds"], float)


def test_seed_race_is_reported_with_json_contract(env, db, capsys):
    healthy_run(db, "r1")
    seed_race(db, "r2")
    code, payload = run_json(capsys)
    assert code == 1
    results = by_check(payload)
    mismatch = results["dashboard_mismatch"]
    assert mismatch["status"] == "violation"
    assert mismatch["severity"] == "critical"
    assert mismatch["violations"] == 1
    assert mismatch["samples"] == [
        {
            "run_id": "r2",
            "partition_progress_failed": 3,
            "worker_runs_failed": 2,
            "partition_progress_completed": 1,
            "worker_runs_completed": 1,
        }
    ]
    missing = results["missing_worker_runs"]
    assert missing["violations"] == 1
    assert missing["samples"] == [{"run_id": "r2", "partition_id": 2}]
    assert results["flag_conflict"]["status"] == "ok"


def test_table_format_lists_violations_and_samples(env, db, capsys):
    seed_race(db, "r2")
    code, out, _ = run_cli(capsys, "check")
    assert code == 1
    assert "dashboard_mismatch" in out
    assert "run_id=r2 partition_progress_failed=3 worker_runs_failed=2" in out


def test_only_named_checks_run(env, db, capsys):
    seed_race(db, "r2")
    code, payload = run_json(capsys, "--check", "flag_conflict")
    assert code == 0
    assert [r["check"] for r in payload["results"]] == ["flag_conflict"]


def test_unknown_check_name_exits_2_with_one_line(env, capsys):
    code, _out, err = run_cli(capsys, "check", "--check", "nope")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "unknown check 'nope'" in err
    assert "dashboard_mismatch" in err


def test_missing_database_url_exits_2(capsys):
    code, _, err = run_cli(capsys, "check")
    assert code == 2
    assert "DQ_DATABASE_URL is not set" in err


def test_unreachable_database_exits_3_without_secret(monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", "postgresql://dq:hunter2@127.0.0.1:1/nowhere")
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "2s")
    code, out, err = run_cli(capsys, "check")
    assert code == 3
    assert "hunter2" not in out + err
    assert "Traceback" not in err
    assert "cannot connect to the state store at 127.0.0.1:1/nowhere" in err
    assert len(err.strip().splitlines()) == 1


def test_every_run_is_recorded(env, db, capsys):
    seed_race(db, "r2")
    run_cli(capsys, "check")
    run_cli(capsys, "check")
    rows = db.execute(
        "SELECT check_name, status, violations, mode FROM dq_monitor.check_runs"
        " WHERE check_name = 'dashboard_mismatch' ORDER BY id"
    ).fetchall()
    assert rows == [
        ("dashboard_mismatch", "violation", 1, "full"),
        ("dashboard_mismatch", "violation", 1, "incremental"),
    ]
