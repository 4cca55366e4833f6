"""dashboard_mismatch, missing_worker_runs and flag_conflict on hand-built data."""

from __future__ import annotations

import pytest

from checks import Status
from tests.factories import add_partition, add_run, add_worker, ago, healthy_run, seed_race
from tests.helpers import run_checks, settings_for

CONSISTENCY = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict")


@pytest.fixture
def settings(monkeypatch, db_url):
    return settings_for(monkeypatch, db_url)


def test_consistent_runs_are_clean(settings, db):
    healthy_run(db, "a", partitions=5, failed=[0, 3])
    healthy_run(db, "b", partitions=2)
    results = run_checks(settings, *CONSISTENCY)
    assert {n: r.status for n, r in results.items()} == dict.fromkeys(CONSISTENCY, Status.OK)


def test_seed_race_counts_differ(settings, db):
    seed_race(db, "race")
    result = run_checks(settings, "dashboard_mismatch")["dashboard_mismatch"]
    assert result.status is Status.VIOLATION
    assert result.violations == 1
    assert result.samples[0]["partition_progress_failed"] == 3
    assert result.samples[0]["worker_runs_failed"] == 2


def test_completed_mismatch_alone_is_a_violation(settings, db):
    add_run(db, "c")
    add_partition(db, "c", 0, completed=True)
    add_partition(db, "c", 1, completed=True)
    add_worker(db, "c", 0, "completed")
    add_worker(db, "c", 1, "completed")
    add_worker(db, "c", 1, "completed")  # a duplicate completion row
    result = run_checks(settings, "dashboard_mismatch")["dashboard_mismatch"]
    assert result.violations == 1
    assert result.samples[0]["worker_runs_completed"] == 3


def test_worker_rows_without_progress_rows_count_for_mismatch(settings, db):
    add_run(db, "orphan")
    add_worker(db, "orphan", 7, "failed")
    results = run_checks(settings, *CONSISTENCY)
    assert results["dashboard_mismatch"].violations == 1
    assert results["missing_worker_runs"].violations == 0


def test_running_worker_rows_do_not_count(settings, db):
    add_run(db, "r")
    add_partition(db, "r", 0, failed=True)
    add_worker(db, "r", 0, "failed")
    add_worker(db, "r", 0, "running", started_at=ago(hours=1))
    add_partition(db, "r", 1)  # still pending, no worker row: not missing
    results = run_checks(settings, *CONSISTENCY)
    assert all(r.status is Status.OK for r in results.values())


def test_missing_worker_runs_lists_partitions_in_order(settings, db):
    add_run(db, "m")
    for pid in (5, 2, 9):
        add_partition(db, "m", pid, failed=True)
    add_partition(db, "m", 1, completed=True)
    add_worker(db, "m", 1, "completed")
    result = run_checks(settings, "missing_worker_runs")["missing_worker_runs"]
    assert result.violations == 3
    assert [s["partition_id"] for s in result.samples] == [2, 5, 9]
    assert all(s["run_id"] == "m" for s in result.samples)


def test_flag_conflict(settings, db):
    add_run(db, "f")
    add_partition(db, "f", 0, completed=True, failed=True)
    add_partition(db, "f", 1, completed=True)
    add_worker(db, "f", 0, "failed")
    add_worker(db, "f", 1, "completed")
    result = run_checks(settings, "flag_conflict")["flag_conflict"]
    assert result.violations == 1
    assert result.samples == ({"run_id": "f", "partition_id": 0},)


def test_count_is_exact_while_samples_are_bounded(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url, sample_limit="3")
    for run in range(4):
        add_run(db, f"r{run}")
        for pid in range(3):
            add_partition(db, f"r{run}", pid, failed=True)
    result = run_checks(settings, "missing_worker_runs")["missing_worker_runs"]
    assert result.violations == 12
    assert len(result.samples) == 3


def test_unsettled_run_is_not_judged_until_it_settles(monkeypatch, db_url, db):
    # The worker updated partition_progress a moment ago; its worker_runs row comes next.
    add_run(db, "w")
    add_partition(db, "w", 0, failed=True, updated_at=ago(seconds=10))
    settings = settings_for(monkeypatch, db_url)  # default settle time: 2 minutes
    results = run_checks(settings, *CONSISTENCY)
    assert all(r.status is Status.OK for r in results.values())
    # Once the settle time has passed with no worker row, it is a real defect.
    monkeypatch.setenv("DQ_SETTLE_TIME", "5s")
    settings = settings_for(monkeypatch, db_url)
    results = run_checks(settings, *CONSISTENCY)
    assert results["missing_worker_runs"].violations == 1
    assert results["dashboard_mismatch"].violations == 1


def test_unsettled_run_keeps_its_earlier_findings(monkeypatch, db_url, db):
    seed_race(db, "race")
    settings = settings_for(monkeypatch, db_url)
    assert run_checks(settings, "dashboard_mismatch")["dashboard_mismatch"].violations == 1
    # A worker touches the run again: it is unsettled now, so its last verdict stands.
    db.execute("UPDATE partition_progress SET updated_at = now() WHERE run_id = 'race'")
    for full in (False, True):
        result = run_checks(settings, "dashboard_mismatch", full=full)["dashboard_mismatch"]
        assert result.violations == 1, full
