"""Incremental runs re-judge changed runs, carry the rest forward, and agree with a full sweep."""

from __future__ import annotations

import random

import pytest

from checks import Mode
from tests.factories import add_partition, add_run, add_worker, ago, healthy_run, seed_race
from tests.helpers import run_checks, settings_for

CHECKS = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict", "stale_partitions")


@pytest.fixture
def settings(monkeypatch, db_url):
    return settings_for(monkeypatch, db_url, settle_time="0s", incremental_overlap="1s")


def summary(results):
    return {n: (r.status, r.violations, r.samples) for n, r in results.items()}


def without_ages(results):
    # stale samples carry an age that grows between two runs; compare everything else
    return {
        n: (r.status, r.violations, [{k: v for k, v in s.items() if k != "age_seconds"}
                                      for s in r.samples])
        for n, r in results.items()
    }  # fmt: skip


def test_first_run_is_full_then_incremental(settings, db):
    healthy_run(db, "a")
    first = run_checks(settings, *CHECKS)
    second = run_checks(settings, *CHECKS)
    assert {r.mode for r in first.values()} == {Mode.FULL}
    assert {r.mode for r in second.values()} == {Mode.INCREMENTAL}


def test_incremental_carries_old_findings_and_judges_new_changes(settings, db):
    seed_race(db, "old_race", at=ago(hours=3))
    healthy_run(db, "fine", at=ago(hours=3))
    run_checks(settings, *CHECKS)  # baseline full sweep
    # New defects after the watermark, in a new run and in an existing clean run.
    seed_race(db, "new_race", at=ago(seconds=1))
    db.execute(
        "UPDATE partition_progress SET failed = true, completed = true, updated_at = now()"
        " WHERE run_id = 'fine' AND partition_id = 0"
    )
    incremental = run_checks(settings, *CHECKS)
    assert incremental["dashboard_mismatch"].mode is Mode.INCREMENTAL
    assert incremental["dashboard_mismatch"].violations == 3  # old_race, new_race, fine
    assert incremental["flag_conflict"].violations == 1
    assert incremental["missing_worker_runs"].violations == 2
    full = run_checks(settings, *CHECKS, full=True)
    assert summary(incremental) == summary(full) or without_ages(incremental) == without_ages(full)


def test_fix_seen_by_incremental_run_resolves_the_finding(settings, db):
    seed_race(db, "race", at=ago(hours=3))
    assert run_checks(settings, "dashboard_mismatch")["dashboard_mismatch"].violations == 1
    add_worker(db, "race", 2, "failed", started_at=ago(seconds=1))
    result = run_checks(settings, "dashboard_mismatch")["dashboard_mismatch"]
    assert result.mode is Mode.INCREMENTAL
    assert result.violations == 0


def test_edit_invisible_to_the_window_is_settled_by_the_next_full_sweep(settings, db):
    seed_race(db, "race", at=ago(hours=3))
    run_checks(settings, "missing_worker_runs")
    # A manual fix that leaves updated_at alone: the incremental window cannot see it.
    add_worker(db, "race", 2, "failed", started_at=ago(hours=3))
    assert run_checks(settings, "missing_worker_runs")["missing_worker_runs"].violations == 1
    result = run_checks(settings, "missing_worker_runs", full=True)["missing_worker_runs"]
    assert result.violations == 0


def test_changed_settings_force_a_full_sweep(monkeypatch, db_url, db):
    healthy_run(db, "a")
    run_checks(settings_for(monkeypatch, db_url), "stale_partitions")
    changed = settings_for(monkeypatch, db_url, checks__stale_partitions__threshold="10m")
    assert run_checks(changed, "stale_partitions")["stale_partitions"].mode is Mode.FULL


def test_randomised_history_incremental_always_equals_full(settings, db):
    rng = random.Random(20261129)
    for run in range(12):
        add_run(db, f"r{run}", started_at=ago(hours=5))
        for pid in range(6):
            add_partition(db, f"r{run}", pid, completed=True, updated_at=ago(hours=5))
            add_worker(db, f"r{run}", pid, "completed", started_at=ago(hours=5))
    run_checks(settings, *CHECKS)
    for step in range(6):
        for _ in range(4):
            run, pid = f"r{rng.randrange(12)}", rng.randrange(6)
            action = rng.choice(["fail", "conflict", "delete_worker", "fix", "pending"])
            if action == "fail":
                db.execute(
                    "UPDATE partition_progress SET completed = false, failed = true,"
                    " updated_at = now() WHERE run_id = %s AND partition_id = %s",
                    (run, pid),
                )
            elif action == "conflict":
                db.execute(
                    "UPDATE partition_progress SET completed = true, failed = true,"
                    " updated_at = now() WHERE run_id = %s AND partition_id = %s",
                    (run, pid),
                )
            elif action == "delete_worker":
                db.execute(
                    "DELETE FROM worker_runs WHERE run_id = %s AND partition_id = %s", (run, pid)
                )
                db.execute(
                    "UPDATE partition_progress SET updated_at = now()"
                    " WHERE run_id = %s AND partition_id = %s",
                    (run, pid),
                )
            elif action == "pending":
                db.execute(
                    "UPDATE partition_progress SET completed = false, failed = false,"
                    " updated_at = now()"
                    " WHERE run_id = %s AND partition_id = %s",
                    (run, pid),
                )
            else:
                db.execute(
                    "UPDATE partition_progress SET completed = true, failed = false,"
                    " updated_at = now() WHERE run_id = %s AND partition_id = %s",
                    (run, pid),
                )
                db.execute(
                    "DELETE FROM worker_runs WHERE run_id = %s AND partition_id = %s", (run, pid)
                )
                db.execute(
                    "INSERT INTO worker_runs (run_id, partition_id, status, started_at,"
                    " finished_at) VALUES (%s, %s, 'completed', now(), now())",
                    (run, pid),
                )
        incremental = run_checks(settings, *CHECKS)
        assert {r.mode for r in incremental.values()} == {Mode.INCREMENTAL}
        full = run_checks(settings, *CHECKS, full=True)
        assert without_ages(incremental) == without_ages(full), f"step {step}"
