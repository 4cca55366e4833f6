"""The state store's schema: created once, upgraded idempotently, safe with two monitors at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from pydantic import SecretStr

from alerts import SystemClock
from config import StoreError
from monitor.db import ConnectionSource
from monitor.store.schema import LATEST_VERSION
from monitor.store.state_store import StateStore


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
