"""What users see when things go wrong: timeouts, wrong names, injection, a database going away."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from tests.factories import healthy_run, seed_race
from tests.helpers import by_check, run_cli, run_json


@pytest.mark.pg_timers
def test_statement_timeout_is_an_error_result(tmp_path, monkeypatch, db_url, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[[checks.custom]]\nname = "slow"\nsql = "SELECT pg_sleep(5)"\n')
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_STATEMENT_TIMEOUT", "1s")
    started = time.monotonic()
    code, payload = run_json(capsys, "--config", str(path), "--check", "slow")
    assert time.monotonic() - started < 4
    assert code == 1
    (result,) = payload["results"]
    assert result["status"] == "error"
    assert "cancelled after statement_timeout 1s" in result["error"]


def test_wrong_table_name_exits_2_and_says_what_to_set(monkeypatch, db_url, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_TABLES__PARTITION_PROGRESS__NAME", "partition_progess")
    code, _out, err = run_cli(capsys, "check", "--check", "stale_partitions")
    assert code == 2
    assert 'relation "public.partition_progess" does not exist (SQLSTATE 42P01)' in err
    assert "tables.* names" in err
    assert "Traceback" not in err


def test_sql_injection_through_a_table_name_is_quoted_not_executed(monkeypatch, db_url, db, capsys):
    healthy_run(db, "keep")
    evil = "partition_progress; DROP TABLE run_metadata CASCADE; --"
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_TABLES__PARTITION_PROGRESS__NAME", evil)
    monkeypatch.setenv("DQ_TABLES__WORKER_RUNS__RUN_ID", 'run_id" FROM worker_runs; --')
    code, payload = run_json(capsys)
    assert code == 2
    errors = [r["error"] for r in payload["results"] if r["status"] == "error"]
    assert any(f'relation "public.{evil}" does not exist' in e for e in errors)
    assert db.execute("SELECT count(*) FROM run_metadata").fetchone() == (1,)


def test_missing_index_is_named_with_the_statement_to_create_it(monkeypatch, db_url, db, capsys):
    db.execute("DROP INDEX partition_progress_updated_at_idx")
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    code, _out, err = run_cli(capsys, "check")
    assert code == 0
    assert (
        "missing index on public.partition_progress (updated_at), used to find runs changed since "
        'the last run; create it: CREATE INDEX CONCURRENTLY ON "public"."partition_progress" '
        '("updated_at");'
    ) in err
    code, payload = run_json(capsys)
    assert len(payload["hints"]) == 1
    assert "worker_runs" not in err


def _check_in_subprocess(env: dict[str, str], config: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "check", "--config", config],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("separate_state_store", [True, False])
def test_database_going_away_mid_run_exits_3_with_one_clear_line(
    tmp_path, private_pg, pg_server, separate_state_store
):
    monitored = private_pg.url()
    with psycopg.connect(monitored, autocommit=True) as conn:
        seed_race(conn, "r1")
    config = tmp_path / "c.toml"
    # A custom check that runs long enough for the server to be stopped underneath it.
    config.write_text('[[checks.custom]]\nname = "long"\nsql = "SELECT pg_sleep(20)"\n')
    env = {"DQ_DATABASE_URL": monitored, "DQ_CONNECT_TIMEOUT": "2s"}
    if separate_state_store:
        name, state_url = pg_server.create_database(schema=False)
        env["DQ_STATE_DATABASE_URL"] = state_url
    proc = _check_in_subprocess(env, str(config))
    _wait_for_query(monitored, "pg_sleep(20)")
    stopper = threading.Thread(target=private_pg.stop, args=("immediate",))
    stopper.start()
    out, err = proc.communicate(timeout=60)
    # Joined before the fixture's cleanup, which would otherwise race this stop.
    stopper.join(timeout=60)
    assert proc.returncode == 3, (out, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, err
    if separate_state_store:
        assert any('check "long": lost the monitored database' in line for line in lines)
        with psycopg.connect(state_url) as conn:
            recorded = conn.execute(
                "SELECT status, error_kind FROM dq_monitor.check_runs WHERE check_name = 'long'"
            ).fetchall()
        assert recorded == [("error", "unavailable")]
        pg_server.drop_database(name)
    else:
        assert len(lines) == 1, lines
        assert "state store" in lines[0] or "database" in lines[0]


def _wait_for_query(url: str, text: str) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dq-monitor'"
                " AND state = 'active' AND strpos(query, %s) > 0",
                (text,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"query {text!r} never started")


def test_json_error_contract(monkeypatch, db_url, db, capsys):
    seed_race(db, "r")
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_TABLES__RUN_METADATA__NAME", "nope")
    code, payload = run_json(capsys)
    results = by_check(payload)
    assert code == 2
    assert results["counter_writes"]["status"] == "error"
    assert results["counter_writes"]["violations"] == 0
    assert results["counter_writes"]["samples"] == []
    assert results["dashboard_mismatch"]["status"] == "violation"
