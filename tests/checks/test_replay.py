"""check_on = "standby": the checks read the first standby, judged as of its replay point."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from checks import Status
from config import load_settings
from tests.factories import seed_race
from tests.helpers import run_checks
from tests.plugins.standby import StandbyPair

CHECK = "dashboard_mismatch"


def on_standby(pair: StandbyPair, dbname: str, monkeypatch, *, standby: str | None = None,
               **database: str) -> None:  # fmt: skip
    entry = {"name": "default", "url": pair.primary_url(dbname), "check_on": "standby",
             "standby_urls": [standby or pair.standby_url(dbname)], **database}  # fmt: skip
    monkeypatch.setenv("DQ_DATABASES", json.dumps([entry]))


def primary(pair: StandbyPair, dbname: str) -> psycopg.Connection:
    return psycopg.connect(pair.primary_url(dbname), autocommit=True)


def test_the_checks_find_the_seeded_defects_once_replayed(standby_pair, standby_db, monkeypatch):
    on_standby(standby_pair, standby_db, monkeypatch)
    with primary(standby_pair, standby_db) as db:
        seed_race(db, "replayed")
        standby_pair.wait_for_replay()
        standby_pair.pause_replay()
        seed_race(db, "not_replayed")  # on the primary only, while replay is paused
    result = run_checks(load_settings(), CHECK, full=True)[CHECK]
    assert result.status is Status.VIOLATION
    assert [s["run_id"] for s in result.samples] == ["replayed"]

    standby_pair.resume_replay()
    standby_pair.wait_for_replay()
    result = run_checks(load_settings(), CHECK, full=True)[CHECK]
    assert sorted(s["run_id"] for s in result.samples) == ["not_replayed", "replayed"]


def test_runs_changed_within_settle_time_of_the_replay_point_are_not_judged(
    standby_pair, standby_db, monkeypatch
):
    on_standby(standby_pair, standby_db, monkeypatch)
    monkeypatch.setenv("DQ_SETTLE_TIME", "2s")
    with primary(standby_pair, standby_db) as db:
        row = db.execute("SELECT now()").fetchone()
        seed_race(db, "fresh", at=row[0])  # changed now, by the database's clock
        standby_pair.wait_for_replay()
        standby_pair.pause_replay()
        db.execute("CREATE TABLE later (x int)")  # WAL the standby receives but does not replay
    standby_pair.received_ahead_of_replay()
    _wait_until_standby_clock_passes(standby_pair, row[0], seconds=3)
    # The standby's own clock is past the settle time; its replay point is not, so the run is
    # still in flight as far as the replayed data can tell.
    result = run_checks(load_settings(), CHECK, full=True)[CHECK]
    assert result.status is Status.OK, result.error
    assert result.violations == 0

    standby_pair.resume_replay()
    standby_pair.wait_for_replay()
    result = run_checks(load_settings(), CHECK, full=True)[CHECK]
    assert result.status is Status.VIOLATION
    assert [s["run_id"] for s in result.samples] == ["fresh"]


def test_a_standby_behind_max_replay_lag_is_an_error_not_clean(
    standby_pair, standby_db, monkeypatch
):
    on_standby(standby_pair, standby_db, monkeypatch, max_replay_lag="1s")
    with primary(standby_pair, standby_db) as db:
        row = db.execute("SELECT now()").fetchone()
        db.execute("CREATE TABLE marker (x int)")
        standby_pair.wait_for_replay()
        standby_pair.pause_replay()
        db.execute("CREATE TABLE later (x int)")
    standby_pair.received_ahead_of_replay()
    _wait_until_standby_clock_passes(standby_pair, row[0], seconds=2)
    result = run_checks(load_settings(), CHECK)[CHECK]
    assert result.status is Status.ERROR
    assert result.error is not None
    assert "\n" not in result.error
    assert f"standby at {standby_pair.standby_address} is " in result.error
    assert "behind the primary" in result.error
    assert "max_replay_lag 1s" in result.error

    standby_pair.resume_replay()
    standby_pair.wait_for_replay()
    assert run_checks(load_settings(), CHECK)[CHECK].status is Status.OK


def test_an_idle_primary_is_not_lag(standby_pair, standby_db, monkeypatch):
    """Nothing to replay: the last replayed commit ages, the standby is not behind."""
    on_standby(standby_pair, standby_db, monkeypatch, max_replay_lag="1s")
    with primary(standby_pair, standby_db) as db:
        row = db.execute("SELECT now()").fetchone()
        seed_race(db, "old")
    standby_pair.wait_for_replay()
    _wait_until_standby_clock_passes(standby_pair, row[0], seconds=2)
    result = run_checks(load_settings(), CHECK, full=True)[CHECK]
    assert result.status is Status.VIOLATION, result.error


def test_a_server_that_is_not_a_standby_is_an_error(standby_pair, standby_db, monkeypatch):
    on_standby(standby_pair, standby_db, monkeypatch,
               standby=standby_pair.primary_url(standby_db))  # fmt: skip
    with primary(standby_pair, standby_db) as db:
        seed_race(db, "race")
    result = run_checks(load_settings(), CHECK)[CHECK]
    assert result.status is Status.ERROR
    assert result.error is not None
    assert "is not a standby" in result.error


def _wait_until_standby_clock_passes(pair: StandbyPair, at, *, seconds: float) -> None:
    """Until the standby's now() is `seconds` past `at` (a primary timestamp)."""
    with psycopg.connect(pair.standby_url(), autocommit=True) as conn:
        for _ in range(600):
            row = conn.execute("SELECT extract(epoch FROM now() - %s)", (at,)).fetchone()
            if row and row[0] > seconds:
                return
            time.sleep(0.05)
    pytest.fail(f"the standby's clock did not pass {at} + {seconds}s")


def test_a_replay_conflict_is_an_error_that_says_what_to_set(
    standby_pair, standby_db, monkeypatch, tmp_path
):
    config = tmp_path / "dq-monitor.toml"
    slow = "SELECT run_id FROM run_metadata, pg_sleep(30) WHERE random() < 0"
    config.write_text(f'[[checks.custom]]\nname = "slow"\nsql = "{slow}"\n')
    monkeypatch.setenv("DQ_CONFIG", str(config))
    on_standby(standby_pair, standby_db, monkeypatch)
    standby_pair.set_standby("max_standby_streaming_delay", "0")  # cancel at the first conflict
    found: dict = {}
    worker = threading.Thread(
        target=lambda: found.update(run_checks(load_settings(), "slow")), daemon=True
    )
    worker.start()
    with psycopg.connect(standby_pair.standby_url(standby_db), autocommit=True) as conn:
        for _ in range(1200):
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                               " AND query LIKE '%%pg_sleep(30)%%' AND pid <> pg_backend_pid()"
                               ).fetchone()  # fmt: skip
            if row and row[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the slow check never started on the standby: {found}")
    with primary(standby_pair, standby_db) as db, db.transaction():
        # Replaying this lock must wait for the check's lock on the standby: a conflict.
        db.execute("LOCK TABLE run_metadata IN ACCESS EXCLUSIVE MODE")
    worker.join(60)
    assert not worker.is_alive(), "the check was not cancelled by the replay conflict"
    result = found["slow"]
    assert result.status is Status.ERROR
    assert "conflict with recovery" in result.error
    assert "hot_standby_feedback = on" in result.error
