"""consolidation_missed's memory: incremental cycles skip blocked runs until they change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

import psycopg
import pytest

from checks import Evaluation, JsonValue, Memory, Mode, Window, build_probes, select_checks
from tests.factories import add_partition, add_run, ago
from tests.helpers import run_checks, settings_for

MISSED = "consolidation_missed"


class Store:
    """A state store stand-in: keeps the memory between evaluations, records the lookups."""

    def __init__(self) -> None:
        self.entries: dict[str, JsonValue] | None = None  # None: nothing remembered yet
        self.asked: list[set[str] | None] = []

    def lookup(self, keys: Collection[str] | None) -> Mapping[str, JsonValue]:
        assert self.entries is not None
        self.asked.append(None if keys is None else set(keys))
        if keys is None:
            return dict(self.entries)
        return {k: self.entries[k] for k in keys if k in self.entries}

    def memory(self) -> dict[str, Memory]:
        if self.entries is None:
            return {}
        return {MISSED: Memory(summary={}, lookup=self.lookup)}

    def keep(self, evaluation: Evaluation) -> None:
        update = evaluation.memory
        assert update is not None
        if update.replace or self.entries is None:
            assert update.replace, "a first evaluation must write a whole memory"
            self.entries = {}
        self.entries.update(update.put)
        for key in update.drop:
            self.entries.pop(key, None)


@pytest.fixture
def cycle(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url)
    (probe,) = build_probes(select_checks(settings, [MISSED]))
    store = Store()

    def run(mode: Mode = Mode.INCREMENTAL, since: str = "10 minutes") -> Evaluation:
        row = db.execute("SELECT now() - %s::interval", (since,)).fetchone()
        assert row is not None
        window = (
            Window(Mode.INCREMENTAL, since=row[0], memory=store.memory())
            if mode is Mode.INCREMENTAL
            else Window(Mode.FULL, memory=store.memory())
        )
        with psycopg.connect(db_url, autocommit=True) as conn:
            evaluation = probe.evaluate(conn, window)[MISSED]
        store.keep(evaluation)
        return evaluation

    run.store = store  # type: ignore[attr-defined]
    return run


def stuck_run(db, run: str, at: dt.datetime) -> None:
    add_run(db, run)
    add_partition(db, run, 0, completed=True, updated_at=at)
    add_partition(db, run, 1, updated_at=at)  # never finishes: the run stays open


def missed(evaluation: Evaluation) -> list[str]:
    return sorted(f.run_key for f in evaluation.findings)


def test_first_evaluation_without_memory_judges_every_open_run(cycle, db):
    stuck_run(db, "stuck", ago(hours=2))
    add_run(db, "missed")  # finished long before the window: found all the same
    add_partition(db, "missed", 0, completed=True, updated_at=ago(hours=2))
    first = cycle()
    assert (first.mode, missed(first), first.judged) == (Mode.INCREMENTAL, ["missed"], None)
    assert first.memory is not None
    assert first.memory.replace
    assert dict(first.memory.put) == {"stuck": True}
    assert cycle.store.asked == []  # nothing was remembered to look up


def test_stuck_run_is_skipped_until_its_last_partition_finishes(cycle, db):
    stuck_run(db, "stuck", ago(hours=2))
    cycle()
    # Finished with no new updated_at: a quiet cycle cannot see it, which shows it is skipped.
    db.execute("UPDATE partition_progress SET completed = true WHERE run_id = 'stuck'")
    quiet = cycle()
    assert missed(quiet) == []
    assert quiet.note == "1 blocked run unchanged, not judged"
    assert cycle.store.asked == [{"stuck"}]
    # Its partition changes now: judged, finished too recently to be missed, forgotten.
    db.execute(
        "UPDATE partition_progress SET updated_at = %s WHERE run_id = 'stuck'",
        (ago(minutes=5),),
    )
    changed = cycle()
    assert (missed(changed), changed.note) == ([], None)
    assert cycle.store.entries == {}
    # No longer remembered as blocked, it is judged every cycle: found once past the threshold.
    db.execute(
        "UPDATE partition_progress SET updated_at = %s WHERE run_id = 'stuck'",
        (ago(minutes=20),),
    )
    assert missed(cycle(since="1 minute")) == ["stuck"]


def test_consolidated_run_drops_its_finding_in_an_incremental_cycle(cycle, db):
    stuck_run(db, "stuck", ago(hours=2))
    add_run(db, "missed")
    add_partition(db, "missed", 0, completed=True, updated_at=ago(hours=2))
    assert missed(cycle()) == ["missed"]
    assert missed(cycle()) == ["missed"]  # judged again each cycle: it is not blocked
    db.execute("UPDATE run_metadata SET status = 'completed' WHERE run_id = 'missed'")
    after = cycle()
    # judged None: every run's findings are replaced, so the consolidated run has none.
    assert (missed(after), after.judged) == ([], None)


def test_newly_open_run_is_judged(cycle, db):
    stuck_run(db, "stuck", ago(hours=2))
    cycle()
    add_run(db, "new")  # its partitions changed before the window: found as a new open run
    add_partition(db, "new", 0, failed=True, updated_at=ago(hours=1))
    after = cycle()
    assert missed(after) == ["new"]
    assert cycle.store.asked == [{"stuck", "new"}]
    stuck_run(db, "new_stuck", ago(hours=1))
    cycle()
    assert cycle.store.entries == {"stuck": True, "new_stuck": True}


def test_changed_run_that_closed_is_forgotten(cycle, db):
    stuck_run(db, "stuck", ago(hours=2))
    cycle()
    db.execute(
        "UPDATE partition_progress SET completed = true, updated_at = %s WHERE run_id = 'stuck'",
        (ago(minutes=1),),
    )
    db.execute("UPDATE run_metadata SET status = 'completed' WHERE run_id = 'stuck'")
    after = cycle()
    assert after.memory is not None
    assert after.memory.drop == {"stuck"}
    assert cycle.store.entries == {}


def test_full_sweep_judges_every_open_run_and_rewrites_the_memory(cycle, db):
    stuck_run(db, "stuck", ago(hours=2))
    stuck_run(db, "freed", ago(hours=2))
    cycle()
    assert cycle.store.entries == {"stuck": True, "freed": True}
    # Its stuck partition deleted: no partition changed, so only a full sweep sees it.
    db.execute("DELETE FROM partition_progress WHERE run_id = 'freed' AND partition_id = 1")
    assert missed(cycle()) == []
    full = cycle(Mode.FULL)
    assert (full.mode, missed(full)) == (Mode.FULL, ["freed"])
    assert full.memory is not None
    assert full.memory.replace
    assert cycle.store.entries == {"stuck": True}
    assert len(cycle.store.asked) == 1  # the full sweep looked nothing up


def test_memory_kept_in_the_state_store_skips_the_stuck_run(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url)
    stuck_run(db, "stuck", ago(hours=2))
    assert run_checks(settings, MISSED)[MISSED].violations == 0
    db.execute("UPDATE partition_progress SET completed = true WHERE run_id = 'stuck'")
    quiet = run_checks(settings, MISSED)[MISSED]
    assert (quiet.mode, quiet.violations) == (Mode.INCREMENTAL, 0)
    assert quiet.note == "1 blocked run unchanged, not judged"
    full = run_checks(settings, MISSED, full=True)[MISSED]
    assert [s["run_id"] for s in full.samples] == ["stuck"]
