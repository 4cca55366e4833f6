"""The state store's schema: created once, upgraded idempotently, safe with two monitors at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from pydantic import SecretStr

from alerts import SystemClock
from checks import all_checks
from config import StoreError
from monitor.db import ConnectionSource
from monitor.store import schema as store_schema
from monitor.store.schema import LATEST_VERSION
from monitor.store.state_store import StateStore
from tests.factories import add_run
from tests.helpers import run_checks, settings_for


@pytest.fixture
def store():
    opened: list[StateStore] = []

    def make(url: str, schema: str = "dq_monitor") -> StateStore:
        source = ConnectionSource(
            SecretStr(url), purpose="state store", connect_timeout=timedelta(seconds=5)
        )
        opened.append(StateStore(source, schema, 20, SystemClock()))
        return opened[-1]

    yield make
    for s in opened:
        s.source.close()


def test_upgrade_is_idempotent(store, db_url, db):
    assert store(db_url).upgrade() == LATEST_VERSION
    assert store(db_url).upgrade() == 0
    versions = db.execute("SELECT version FROM dq_monitor.schema_version").fetchall()
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]


def test_two_monitors_starting_at_once_upgrade_once(store, db_url, db):
    barrier = threading.Barrier(4)
    applied: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        s = store(db_url, "shared_state")
        barrier.wait()
        try:
            applied.append(s.upgrade())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(applied) == [0, 0, 0, LATEST_VERSION]


def test_schema_name_is_quoted(store, db_url, db):
    store(db_url, 'odd "schema"; DROP TABLE run_metadata; --').upgrade()
    assert db.execute("SELECT count(*) FROM run_metadata").fetchone() == (0,)
    assert (
        db.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = 'odd \"schema\"; DROP TABLE run_metadata; --'"
        ).fetchone()[0]
        >= 4
    )


def test_newer_schema_is_refused(store, db_url, db):
    store(db_url).upgrade()
    db.execute("INSERT INTO dq_monitor.schema_version VALUES (999, 'from the future')")
    with pytest.raises(StoreError, match="newer than this dq-monitor understands"):
        store(db_url).upgrade()


def test_upgrade_keeps_the_counter_ledger_as_check_memory(monkeypatch, db_url, db):
    """A monitor deployed at version 5 keeps its ledger: no new baseline, no missed write."""
    settings = settings_for(monkeypatch, db_url)
    add_run(db, "seen", completed_workers=7, failed_workers=3)
    add_run(db, "quiet", completed_workers=5)
    add_run(db, "zero")
    with psycopg.connect(db_url, autocommit=True) as conn:
        store_schema.upgrade(conn, "dq_monitor", to=5)
    # What version 5 kept after its baseline, written as its code wrote it.
    fingerprint = next(c for c in all_checks(settings) if c.name == "counter_writes").fingerprint()
    db.execute(
        "INSERT INTO dq_monitor.ledger_baselines (check_name, taken_at, fingerprint)"
        " VALUES ('counter_writes', now(), %s)",
        (fingerprint,),
    )
    db.execute(
        "INSERT INTO dq_monitor.counter_ledger (check_name, run_key, completed, failed)"
        " VALUES ('counter_writes', 'seen', 7, 3), ('counter_writes', 'quiet', 5, NULL)"
    )
    db.execute("UPDATE run_metadata SET failed_workers = 4 WHERE run_id = 'seen'")

    result = run_checks(settings, "counter_writes")["counter_writes"]

    tables = {r[0] for r in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dq_monitor'"
    )}  # fmt: skip
    assert {"counter_ledger", "ledger_baselines"}.isdisjoint(tables)
    assert result.note is None  # compared with the kept ledger, not a new baseline
    assert result.violations == 1
    assert result.samples[0] == {
        "run_id": "seen", "old_completed": 7, "old_failed": 3,
        "new_completed": 7, "new_failed": 4,
    }  # fmt: skip
    memory = db.execute(
        "SELECT key, value FROM dq_monitor.check_memory WHERE check_name = 'counter_writes'"
        " ORDER BY key"
    ).fetchall()
    assert memory == [("quiet", [5, None]), ("seen", [7, 4])]
