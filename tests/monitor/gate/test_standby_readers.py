"""Readers on a hot standby: its pg_stat_statements is gate evidence as much as the primary's."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from tests.helpers import evaluate_gate, run_cli
from tests.monitor.gate.test_gate import insert_history
from tests.plugins.standby import StandbyPair

READER = "SELECT run_id, failed_workers FROM run_metadata"


@pytest.fixture
def gate_pair(standby_pair: StandbyPair, standby_db: str, monkeypatch):
    """The standby pair's database with the extension, a clean recorded week and a baseline
    sample (from 30 days ago) on both servers; DQ_DATABASES names the standby."""
    databases = json.dumps([{
        "name": "default", "url": standby_pair.primary_url(standby_db),
        "standby_urls": [standby_pair.standby_url(standby_db)],
    }])  # fmt: skip
    monkeypatch.setenv("DQ_DATABASES", databases)
    with psycopg.connect(standby_pair.primary_url(standby_db), autocommit=True) as db:
        db.execute("SET pg_stat_statements.track = none")  # seeding is not reading
        db.execute("CREATE EXTENSION pg_stat_statements")
        db.execute("CREATE ROLE dashboard_app LOGIN")
        db.execute("GRANT SELECT ON run_metadata TO dashboard_app")
        standby_pair.wait_for_replay()
        evaluate_gate(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
        insert_history(db, 8)
    standby_pair.wait_for_replay()
    try:
        yield standby_pair
    finally:
        standby_pair.restore()
        with psycopg.connect(standby_pair.primary_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{standby_db}" WITH (FORCE)')
            admin.execute("DROP ROLE IF EXISTS dashboard_app")


def gate(capsys) -> tuple[int, dict]:
    code, out, err = run_cli(capsys, "gate", "--format", "json")
    assert out, err
    return code, json.loads(out)


def test_a_reader_only_on_the_standby_blocks_and_the_report_names_it(gate_pair, standby_db,
                                                                     capsys):  # fmt: skip
    code, report = gate(capsys)
    assert (code, report["decision"]) == (0, "open"), report["evidence"]["readers"]
    readers = report["evidence"]["readers"]
    assert readers["servers"][gate_pair.standby_address]["status"] == "none"

    reader = psycopg.conninfo.make_conninfo(gate_pair.standby_url(standby_db),
                                            user="dashboard_app")  # fmt: skip
    with psycopg.connect(reader) as conn:
        conn.execute(READER).fetchall()

    code, report = gate(capsys)
    assert (code, report["decision"]) == (1, "blocked")
    readers = report["evidence"]["readers"]
    assert readers["status"] == "found"
    assert readers["servers"]["primary"]["status"] == "none"  # the primary never saw it
    [statement] = readers["statements"]
    assert (statement["role"], statement["server"]) == ("dashboard_app", gate_pair.standby_address)
    [blocker] = [b for b in report["blockers"] if b["kind"] == "reader"]
    assert f"standby {gate_pair.standby_address}" in blocker["detail"]
    code, out, _ = run_cli(capsys, "gate")
    assert f"on standby {gate_pair.standby_address}" in out
    assert "postgres@" not in out  # host:port only, never the URL


def test_a_stopped_standby_makes_the_readers_unknown(gate_pair, capsys):
    gate_pair.standby.stop()
    code, report = gate(capsys)
    assert (code, report["decision"]) == (1, "blocked")
    readers = report["evidence"]["readers"]
    assert readers["status"] == "unknown"
    assert readers["servers"]["primary"]["status"] == "none"
    assert readers["reason"].startswith(f"standby {gate_pair.standby_address}: ")
    assert "\n" not in readers["reason"]
    assert "postgres@" not in json.dumps(report)

    # Back after a clean shutdown: pg_stat_statements kept its statistics (stats_reset and
    # every statement's calls continue), so nothing went unseen while it was away.
    gate_pair.standby.start()
    code, report = gate(capsys)
    assert (code, report["decision"]) == (0, "open"), report["evidence"]["readers"]


def test_a_reset_on_the_standby_alone_makes_the_readers_unknown(gate_pair, standby_db, capsys):
    with psycopg.connect(gate_pair.standby_url(standby_db), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    code, report = gate(capsys)
    readers = report["evidence"]["readers"]
    assert (code, readers["status"]) == (1, "unknown")
    assert readers["servers"]["primary"]["status"] == "none"
    assert readers["reason"].startswith(f"standby {gate_pair.standby_address}: statistics were "
                                        "reset")  # fmt: skip


def test_a_standby_without_pg_stat_statements_makes_the_readers_unknown(gate_pair, capsys):
    gate_pair.restart_standby(preload=())
    code, report = gate(capsys)
    assert (code, report["decision"]) == (1, "blocked")
    readers = report["evidence"]["readers"]
    assert readers["status"] == "unknown"
    assert f"standby {gate_pair.standby_address}" in readers["reason"]
    assert "shared_preload_libraries" in readers["reason"]



def test_migrate_refuses_while_a_standby_has_a_reader(gate_pair, standby_db, capsys):
    code, report = gate(capsys)
    assert report["decision"] == "open", report["evidence"]["readers"]
    reader = psycopg.conninfo.make_conninfo(gate_pair.standby_url(standby_db),
                                            user="dashboard_app")  # fmt: skip
    with psycopg.connect(reader) as conn:
        conn.execute(READER).fetchall()

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    assert code == 1, out + err
    assert "refused: the gate is blocked (readers: 1 statement by dashboard_app on standby" in err
    with psycopg.connect(gate_pair.primary_url(standby_db)) as conn:
        columns = conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'run_metadata'::regclass"
            " AND attname IN ('completed_workers', 'failed_workers') AND NOT attisdropped"
        ).fetchone()
    assert columns == (2,)
