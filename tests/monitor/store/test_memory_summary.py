"""Check memory with a summary: lazy loading reads the summary only, entries by key."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from pydantic import SecretStr

from alerts import SystemClock
from checks import MemoryUpdate, all_checks
from monitor.db import ConnectionSource
from monitor.store import memory as store_memory
from monitor.store.state_store import StateStore
from tests.helpers import settings_for

AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def open_store(db_url):
    source = ConnectionSource(
        SecretStr(db_url), purpose="state store", connect_timeout=timedelta(seconds=5)
    )
    store = StateStore(source, "dq_monitor", 20, SystemClock())
    store.upgrade()
    return store


def test_lazy_memory_loads_the_summary_and_looks_entries_up_by_key(monkeypatch, db_url, db):
    check = next(c for c in all_checks(settings_for(monkeypatch, db_url)) if c.lazy_memory)
    store = open_store(db_url)
    try:
        assert store.memory(check) is None  # no baseline yet
        with store.session("test") as conn:
            store_memory.save(
                conn, "dq_monitor", check.name, check.fingerprint(),
                MemoryUpdate(put={"a": [1, 2], "b": [3, None]}, replace=True,
                             summary_put={"total": [2, 5, 6], "7": [2, 5, 6]}),
                at=AT,
            )  # fmt: skip
        memory = store.memory(check)
        assert memory is not None
        assert memory.entries == {}
        assert memory.summary == {"total": [2, 5, 6], "7": [2, 5, 6]}
        assert memory.get(["b", "missing"]) == {"b": [3, None]}
        assert memory.get() == {"a": [1, 2], "b": [3, None]}
        with store.session("test") as conn:
            store_memory.save(
                conn, "dq_monitor", check.name, check.fingerprint(),
                MemoryUpdate(drop=frozenset({"a"}), summary_put={"total": [1, 3, 4]},
                             summary_drop=frozenset({"7"})),
                at=AT,
            )  # fmt: skip
        memory = store.memory(check)
        assert memory is not None
        assert memory.summary == {"total": [1, 3, 4]}
        assert memory.get() == {"b": [3, None]}
        rows = db.execute(
            "SELECT check_name, key FROM dq_monitor.check_memory ORDER BY 1, 2"
        ).fetchall()
        assert rows == [(check.name, "b"), (f"{check.name}/summary", "total")]
        # A new baseline forgets the summary too.
        with store.session("test") as conn:
            store_memory.save(
                conn, "dq_monitor", check.name, check.fingerprint(),
                MemoryUpdate(put={"c": [1, 1]}, replace=True), at=AT,
            )  # fmt: skip
        memory = store.memory(check)
        assert memory is not None
        assert memory.summary == {}
        assert memory.get() == {"c": [1, 1]}
    finally:
        store.source.close()
