"""counter_writes' signature: a quiet cycle reads no ledger, a write only its bucket's runs."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import psycopg
import pytest

from checks import JsonValue, Memory, Mode, Window, build_probes, select_checks
from checks.counter_writes import BUCKETS, TOTAL
from tests.factories import add_run
from tests.helpers import settings_for


class Ledger:
    """A store stand-in that keeps the memory between evaluations and records lookups."""

    def __init__(self) -> None:
        self.entries: dict[str, JsonValue] = {}
        self.summary: dict[str, JsonValue] = {}
        self.asked: list[set[str] | None] = []

    def lookup(self, keys: Collection[str] | None) -> Mapping[str, JsonValue]:
        self.asked.append(None if keys is None else set(keys))
        if keys is None:
            return dict(self.entries)
        return {k: self.entries[k] for k in keys if k in self.entries}


@pytest.fixture
def cycle(monkeypatch, db_url):
    settings = settings_for(monkeypatch, db_url)
    (probe,) = build_probes(select_checks(settings, ["counter_writes"]))
    ledger = Ledger()
    state = {"baseline": False}

    def run():
        memory = (
            {"counter_writes": Memory(summary=dict(ledger.summary), lookup=ledger.lookup)}
            if state["baseline"]
            else {}
        )
        with psycopg.connect(db_url, autocommit=True) as conn:
            evaluation = probe.evaluate(conn, Window(Mode.FULL, memory=memory))["counter_writes"]
        update = evaluation.memory
        if update is not None:
            if update.replace:
                ledger.entries.clear()
                ledger.summary.clear()
            ledger.entries.update(update.put)
            for key in update.drop:
                ledger.entries.pop(key, None)
            ledger.summary.update(update.summary_put)
            for key in update.summary_drop:
                del ledger.summary[key]
        state["baseline"] = True
        return evaluation

    run.ledger = ledger  # type: ignore[attr-defined]
    return run


def bucket(db, key: str) -> str:
    row = db.execute("SELECT hashtextextended(%s, 0) & %s", (key, BUCKETS - 1)).fetchone()
    return str(row[0])


def runs_with_counters(db, count: int) -> list[str]:
    db.execute(
        "INSERT INTO run_metadata (run_id, started_at, completed_workers, failed_workers)"
        " SELECT 'r' || g, now() - interval '30 days', g %% 9 + 1, g %% 4"
        " FROM generate_series(1, %s) AS g",
        (count,),
    )
    return [f"r{g}" for g in range(1, count + 1)]


def in_bucket(db, runs: list[str], key: str) -> set[str]:
    return {r for r in runs if bucket(db, r) == bucket(db, key)}


def test_the_first_cycle_records_the_ledger_and_signs_every_bucket(cycle, db):
    runs = runs_with_counters(db, 300)
    add_run(db, "zero")
    evaluation = cycle()
    assert evaluation.memory is not None
    assert evaluation.memory.replace
    assert set(cycle.ledger.entries) == set(runs)
    buckets = {k: v for k, v in cycle.ledger.summary.items() if k != TOTAL}
    assert sum(v[0] for v in buckets.values()) == 300
    assert set(buckets) == {bucket(db, r) for r in runs}
    assert cycle.ledger.summary[TOTAL][0] == 300


def test_a_quiet_cycle_reads_no_ledger_and_changes_no_memory(cycle, db):
    runs_with_counters(db, 50)
    cycle()
    add_run(db, "new_and_clean")  # a run without counters is outside the signature
    evaluation = cycle()
    assert evaluation.findings == ()
    assert evaluation.memory is None
    assert cycle.ledger.asked == []


def test_a_write_is_found_after_narrowing_to_its_bucket(cycle, db):
    runs = runs_with_counters(db, 300)
    cycle()
    before = dict(cycle.ledger.summary)
    db.execute("UPDATE run_metadata SET failed_workers = failed_workers + 5 WHERE run_id = 'r7'")
    (finding,) = cycle().findings
    assert finding.samples == ({
        "run_id": "r7", "old_completed": 8, "old_failed": 3, "new_completed": 8, "new_failed": 8,
    },)  # fmt: skip
    assert cycle.ledger.asked == [in_bucket(db, runs, "r7")]
    assert len(cycle.ledger.asked[0]) < 20
    assert cycle.ledger.entries["r7"] == [8, 8]
    changed = {k for k in before if before[k] != cycle.ledger.summary[k]}
    assert changed == {TOTAL, bucket(db, "r7")}
    assert cycle().findings == ()
    assert cycle.ledger.asked[1:] == []


def test_two_writes_in_one_bucket(cycle, db):
    runs = runs_with_counters(db, 3000)
    first = "r1"
    second = sorted(in_bucket(db, runs, first) - {first})[0]
    cycle()
    db.execute(
        "UPDATE run_metadata SET completed_workers = completed_workers + 1 WHERE run_id = ANY(%s)",
        ([first, second],),
    )
    found = {f.run_key: f.samples[0] for f in cycle().findings}
    assert set(found) == {first, second}
    assert all(s["new_completed"] == s["old_completed"] + 1 for s in found.values())
    assert cycle.ledger.asked == [in_bucket(db, runs, first)]


def test_a_run_back_at_zero_is_a_write_and_leaves_the_ledger(cycle, db):
    add_run(db, "alone", completed_workers=7, failed_workers=3)
    cycle()
    db.execute("UPDATE run_metadata SET completed_workers = 0, failed_workers = 0")
    evaluation = cycle()
    (finding,) = evaluation.findings
    assert finding.samples[0] == {
        "run_id": "alone", "old_completed": 7, "old_failed": 3, "new_completed": 0,
        "new_failed": 0,
    }  # fmt: skip
    assert cycle.ledger.entries == {}
    assert cycle.ledger.summary == {TOTAL: [0, None, None]}  # its bucket is empty: forgotten
    assert cycle().findings == ()


def test_a_write_in_a_run_never_seen_before(cycle, db):
    runs_with_counters(db, 100)
    cycle()
    add_run(db, "late", failed_workers=2)  # an old worker build still increments
    (finding,) = cycle().findings
    assert finding.samples[0] == {
        "run_id": "late", "old_completed": None, "old_failed": None, "new_completed": 0,
        "new_failed": 2,
    }  # fmt: skip
    assert "late" in cycle.ledger.asked[0]
    assert cycle.ledger.entries["late"] == [0, 2]


def test_a_bucket_that_differs_without_a_write_only_moves_the_signature(cycle, db):
    """A deleted run changes its bucket's signature, yet no run present wrote a counter."""
    runs = runs_with_counters(db, 300)
    cycle()
    db.execute("DELETE FROM run_metadata WHERE run_id = 'r9'")
    evaluation = cycle()
    assert evaluation.findings == ()
    assert cycle.ledger.asked == [in_bucket(db, runs, "r9") - {"r9"}]
    assert cycle.ledger.summary[TOTAL][0] == 299
    # The ledger keeps the deleted run, as a comparison of every run did; the signature moved
    # on, so the next cycle is quiet again.
    assert "r9" in cycle.ledger.entries
    assert cycle().findings == ()
    assert len(cycle.ledger.asked) == 1


def test_a_ledger_kept_without_a_signature_is_compared_whole_once(cycle, db):
    runs_with_counters(db, 100)
    cycle()
    cycle.ledger.summary.clear()  # as a ledger kept before the signatures
    db.execute("UPDATE run_metadata SET failed_workers = 77 WHERE run_id = 'r3'")
    (finding,) = cycle().findings
    assert finding.samples[0]["new_failed"] == 77
    assert cycle.ledger.asked == [None]
    assert cycle.ledger.summary[TOTAL][0] == 100
    assert cycle().findings == ()
    assert len(cycle.ledger.asked) == 1
