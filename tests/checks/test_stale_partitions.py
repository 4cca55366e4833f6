"""stale_partitions: pending partitions that stopped changing, including ones that become stale."""

from __future__ import annotations

import time

from checks import Mode, Status
from tests.factories import add_partition, add_run, ago
from tests.helpers import run_checks, settings_for


def test_old_pending_partition_is_stale_and_fresh_or_terminal_ones_are_not(monkeypatch, db_url, db):
    add_run(db, "s")
    add_partition(db, "s", 0, updated_at=ago(minutes=45))  # stale
    add_partition(db, "s", 1, updated_at=ago(minutes=5))  # still working
    add_partition(db, "s", 2, completed=True, updated_at=ago(days=2))  # done long ago
    add_partition(db, "s", 3, failed=True, updated_at=ago(days=2))
    result = run_checks(settings_for(monkeypatch, db_url), "stale_partitions")["stale_partitions"]
    assert result.status is Status.VIOLATION
    assert result.violations == 1
    (sample,) = result.samples
    assert (sample["run_id"], sample["partition_id"]) == ("s", 0)
    assert 45 * 60 - 5 < sample["age_seconds"] < 45 * 60 + 60


def test_threshold_is_configurable(monkeypatch, db_url, db):
    add_run(db, "s")
    add_partition(db, "s", 0, updated_at=ago(minutes=5))
    settings = settings_for(monkeypatch, db_url, checks__stale_partitions__threshold="4m")
    assert run_checks(settings, "stale_partitions")["stale_partitions"].violations == 1


def test_incremental_run_sees_a_partition_cross_the_threshold(monkeypatch, db_url, db):
    settings = settings_for(
        monkeypatch, db_url, checks__stale_partitions__threshold="1s", incremental_overlap="0s"
    )
    add_run(db, "s")
    add_partition(db, "s", 0, updated_at=ago(seconds=0.2))
    first = run_checks(settings, "stale_partitions")["stale_partitions"]
    assert (first.mode, first.violations) == (Mode.FULL, 0)
    time.sleep(1.2)  # data must age past the threshold; no change happens in between
    second = run_checks(settings, "stale_partitions")["stale_partitions"]
    assert (second.mode, second.violations) == (Mode.INCREMENTAL, 1)


def test_carried_forward_sample_age_is_current(monkeypatch, db_url, db):
    settings = settings_for(monkeypatch, db_url)
    add_run(db, "s")
    add_partition(db, "s", 0, updated_at=ago(hours=2))
    first = run_checks(settings, "stale_partitions")["stale_partitions"]
    time.sleep(0.5)
    second = run_checks(settings, "stale_partitions")["stale_partitions"]
    assert second.mode is Mode.INCREMENTAL
    assert second.samples[0]["age_seconds"] > first.samples[0]["age_seconds"]
