"""counter_writes: a baseline first, then every change to the deprecated counters is evidence."""

from __future__ import annotations

from checks import Status
from tests.factories import add_run
from tests.helpers import run_checks, settings_for


def test_first_run_records_the_baseline_only(monkeypatch, db_url, db):
    add_run(db, "old1", completed_workers=7, failed_workers=3)
    add_run(db, "old2", completed_workers=2)
    add_run(db, "new")
    result = run_checks(settings_for(monkeypatch, db_url), "counter_writes")["counter_writes"]
    assert result.status is Status.OK
    assert result.note == "baseline recorded: 2 runs with non-zero counters"


def test_changes_and_new_runs_with_counters_are_violations(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url)
    add_run(db, "old", completed_workers=7, failed_workers=3)
    add_run(db, "quiet", completed_workers=5)
    add_run(db, "zero")
    run_checks(settings, "counter_writes")
    # Unchanged counters, however stale, are expected after the fix: no violation.
    assert run_checks(settings, "counter_writes")["counter_writes"].status is Status.OK
    db.execute("UPDATE run_metadata SET failed_workers = 4 WHERE run_id = 'old'")
    db.execute("UPDATE run_metadata SET completed_workers = 1 WHERE run_id = 'zero'")
    add_run(db, "after", failed_workers=2)  # an old worker build still increments
    add_run(db, "after_clean")
    result = run_checks(settings, "counter_writes")["counter_writes"]
    assert result.status is Status.VIOLATION
    assert result.violations == 3
    by_run = {s["run_id"]: s for s in result.samples}
    assert by_run["old"] == {
        "run_id": "old",
        "old_completed": 7,
        "old_failed": 3,
        "new_completed": 7,
        "new_failed": 4,
    }
    assert by_run["after"]["old_failed"] is None
    assert by_run["after"]["new_failed"] == 2
    assert set(by_run) == {"old", "zero", "after"}
    # The ledger moved on, and the evidence is remembered (24h by default): no flapping.
    again = run_checks(settings, "counter_writes")["counter_writes"]
    assert again.violations == 3
    assert again.samples == result.samples


def test_remember_0s_reports_each_write_once(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url, checks__counter_writes__remember="0s")
    add_run(db, "old", completed_workers=7)
    run_checks(settings, "counter_writes")
    db.execute("UPDATE run_metadata SET completed_workers = 8")
    assert run_checks(settings, "counter_writes")["counter_writes"].violations == 1
    assert run_checks(settings, "counter_writes")["counter_writes"].status is Status.OK
    db.execute("UPDATE run_metadata SET completed_workers = 9")
    result = run_checks(settings, "counter_writes")["counter_writes"]
    assert result.samples[0]["old_completed"] == 8


def test_counter_reset_to_zero_is_a_write(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url, checks__counter_writes__remember="0s")
    add_run(db, "old", completed_workers=7, failed_workers=3)
    run_checks(settings, "counter_writes")
    db.execute("UPDATE run_metadata SET completed_workers = 0, failed_workers = 0")
    result = run_checks(settings, "counter_writes")["counter_writes"]
    assert result.violations == 1
    assert run_checks(settings, "counter_writes")["counter_writes"].violations == 0
