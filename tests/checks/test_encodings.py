"""Checks on a SQL_ASCII database: text stays text, and bytes that are not UTF-8 are named."""

from __future__ import annotations

import psycopg
import pytest

from checks import Status
from tests.factories import add_run, healthy_run, seed_race
from tests.helpers import run_checks, settings_for

CONSISTENCY = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict")
ALL = (*CONSISTENCY, "stale_partitions", "counter_writes")


@pytest.fixture
def ascii_db(sql_ascii_db_url):
    with psycopg.connect(sql_ascii_db_url, autocommit=True, client_encoding="UTF8") as conn:
        assert conn.execute("SHOW server_encoding").fetchone() == ("SQL_ASCII",)
        yield conn


def statuses(results):
    return {name: (r.status, r.violations, r.error) for name, r in results.items()}


def test_every_check_runs_on_a_sql_ascii_database(monkeypatch, sql_ascii_db_url, ascii_db):
    settings = settings_for(monkeypatch, sql_ascii_db_url)
    seed_race(ascii_db, "race")
    healthy_run(ascii_db, "fine", partitions=3, failed=[1])
    seed_race(ascii_db, "läuft")  # UTF-8 bytes, stored unchecked by SQL_ASCII
    add_run(ascii_db, "counted", completed_workers=2)
    expected = {
        "dashboard_mismatch": (Status.VIOLATION, 2, None),
        "missing_worker_runs": (Status.VIOLATION, 2, None),
        "flag_conflict": (Status.OK, 0, None),
        "stale_partitions": (Status.OK, 0, None),
        "counter_writes": (Status.OK, 0, None),
    }
    # First run (baseline, per-run screen), an incremental one reading the state store's
    # run keys back, then a daily full sweep of the known runs.
    for full in (False, False, True):
        results = run_checks(settings, *ALL, full=full)
        assert statuses(results) == expected, full
    samples = run_checks(settings, "missing_worker_runs")["missing_worker_runs"].samples
    assert sorted(s["run_id"] for s in samples) == ["läuft", "race"]
    ascii_db.execute("UPDATE run_metadata SET failed_workers = 1 WHERE run_id = 'counted'")
    writes = run_checks(settings, "counter_writes")["counter_writes"]
    assert (writes.status, writes.samples[0]["run_id"]) == (Status.VIOLATION, "counted")


def test_bytes_that_are_not_utf8_are_named_not_blamed_on_table_names(
    monkeypatch, sql_ascii_db_url, ascii_db
):
    settings = settings_for(monkeypatch, sql_ascii_db_url)
    # A SQL_ASCII client may store any byte; 0xff is not UTF-8.
    ascii_db.execute("SET client_encoding = 'SQL_ASCII'")
    ascii_db.execute("INSERT INTO run_metadata (run_id, started_at) VALUES (E'bad\\xff', now())")
    ascii_db.execute(
        "INSERT INTO partition_progress (run_id, partition_id, completed, failed, updated_at)"
        " VALUES (E'bad\\xff', 0, true, true, now() - interval '1 hour')"
    )
    result = run_checks(settings, "flag_conflict")["flag_conflict"]
    assert result.status is Status.ERROR
    assert result.error is not None
    assert 'invalid byte sequence for encoding "UTF8": 0xff (SQLSTATE 22021)' in result.error
    assert "not valid UTF-8" in result.error
    assert "tables.schema_name" not in result.error
