"""consolidation_missed and premature_consolidation: runs the worker consolidated wrongly."""

from __future__ import annotations

from checks import Mode, Status
from tests.factories import add_partition, add_run, ago, healthy_run
from tests.helpers import run_checks, settings_for

MISSED, PREMATURE = "consolidation_missed", "premature_consolidation"


def test_finished_run_left_running_past_the_threshold_is_missed(monkeypatch, db_url, db):
    add_run(db, "missed")
    add_partition(db, "missed", 0, completed=True, updated_at=ago(minutes=40))
    add_partition(db, "missed", 1, failed=True, updated_at=ago(minutes=20))
    add_run(db, "recent")  # finished 5 minutes ago: the worker may still consolidate it
    add_partition(db, "recent", 0, completed=True, updated_at=ago(minutes=5))
    add_run(db, "working")  # a partition still pending
    add_partition(db, "working", 0, completed=True, updated_at=ago(hours=2))
    add_partition(db, "working", 1, updated_at=ago(hours=2))
    add_run(db, "done", status="failed")
    add_partition(db, "done", 0, failed=True, updated_at=ago(hours=2))
    add_run(db, "empty")  # no partitions at all: nothing to consolidate
    result = run_checks(settings_for(monkeypatch, db_url), MISSED)[MISSED]
    assert result.status is Status.VIOLATION
    assert result.violations == 1
    (sample,) = result.samples
    assert sample["run_id"] == "missed"
    assert sample["status"] == "running"
    assert sample["partitions"] == 2
    assert isinstance(sample["finished_at"], str)
    assert result.severity.value == "warning"


def test_missed_threshold_and_terminal_statuses_are_configurable(monkeypatch, db_url, db):
    add_run(db, "r", status="succeeded")
    add_partition(db, "r", 0, completed=True, updated_at=ago(minutes=5))
    settings = settings_for(monkeypatch, db_url, checks__consolidation_missed__threshold="4m")
    assert run_checks(settings, MISSED)[MISSED].violations == 1
    settings = settings_for(
        monkeypatch, db_url, checks__consolidation_missed__threshold="4m",
        tables__run_metadata__terminal_statuses='["succeeded", "failed"]',
    )  # fmt: skip
    assert run_checks(settings, MISSED)[MISSED].violations == 0


def test_consolidating_a_missed_run_clears_it_in_the_next_incremental_run(
    monkeypatch, db_url, db
):
    settings = settings_for(monkeypatch, db_url)
    add_run(db, "m")
    add_partition(db, "m", 0, completed=True, updated_at=ago(hours=1))
    assert run_checks(settings, MISSED)[MISSED].violations == 1
    # A status change leaves no timestamp; the check reads every unconsolidated run anyway.
    db.execute("UPDATE run_metadata SET status = 'completed' WHERE run_id = 'm'")
    second = run_checks(settings, MISSED)[MISSED]
    assert (second.mode, second.violations) == (Mode.INCREMENTAL, 0)


def test_terminal_run_with_a_pending_partition_is_premature(monkeypatch, db_url, db):
    add_run(db, "early", status="completed")
    add_partition(db, "early", 0, completed=True, updated_at=ago(hours=1))
    add_partition(db, "early", 1, updated_at=ago(hours=1))
    add_partition(db, "early", 2, updated_at=ago(hours=1))
    add_run(db, "running")  # pending but not consolidated: fine
    add_partition(db, "running", 0, updated_at=ago(hours=1))
    healthy_run(db, "fine", at=ago(hours=1))
    result = run_checks(settings_for(monkeypatch, db_url), PREMATURE)[PREMATURE]
    assert result.status is Status.VIOLATION
    assert result.severity.value == "critical"
    assert result.samples == ({"run_id": "early", "status": "completed", "pending_partitions": 2},)


def test_premature_waits_for_the_settle_time(monkeypatch, db_url, db):
    add_run(db, "busy", status="completed")
    add_partition(db, "busy", 0, updated_at=ago(seconds=10))
    result = run_checks(settings_for(monkeypatch, db_url), PREMATURE)[PREMATURE]
    assert result.violations == 0
    settings = settings_for(monkeypatch, db_url, settle_time="0s")
    assert run_checks(settings, PREMATURE, full=True)[PREMATURE].violations == 1


def test_premature_incremental_judges_changed_runs_and_full_sweep_sees_status_flips(
    monkeypatch, db_url, db
):
    settings = settings_for(monkeypatch, db_url, settle_time="0s", incremental_overlap="1s")
    add_run(db, "a")
    add_partition(db, "a", 0, updated_at=ago(hours=1))
    add_run(db, "b")
    add_partition(db, "b", 0, updated_at=ago(hours=1))
    assert run_checks(settings, PREMATURE)[PREMATURE].violations == 0
    # The worker's way: a partition changes, then the run is (wrongly) consolidated.
    db.execute("INSERT INTO partition_progress (run_id, partition_id, completed, updated_at)"
               " VALUES ('a', 1, true, now())")  # fmt: skip
    db.execute("UPDATE run_metadata SET status = 'completed' WHERE run_id = 'a'")
    # A status flip with no partition change: only the full sweep sees it.
    db.execute("UPDATE run_metadata SET status = 'failed' WHERE run_id = 'b'")
    incremental = run_checks(settings, PREMATURE)[PREMATURE]
    assert incremental.mode is Mode.INCREMENTAL
    assert [s["run_id"] for s in incremental.samples] == ["a"]
    full = run_checks(settings, PREMATURE, full=True)[PREMATURE]
    assert [s["run_id"] for s in full.samples] == ["a", "b"]
    # Finishing the pending partition clears the run incrementally.
    db.execute("UPDATE partition_progress SET completed = true, updated_at = now()"
               " WHERE run_id = 'a'")  # fmt: skip
    assert [s["run_id"] for s in run_checks(settings, PREMATURE)[PREMATURE].samples] == ["b"]


def test_status_column_of_an_enum_type_and_renamed(monkeypatch, db_url, db):
    db.execute("CREATE TYPE run_state AS ENUM ('running', 'completed', 'failed')")
    db.execute("ALTER TABLE run_metadata ALTER COLUMN status DROP DEFAULT")
    db.execute(
        "ALTER TABLE run_metadata ALTER COLUMN status TYPE run_state USING status::run_state"
    )
    db.execute("ALTER TABLE run_metadata RENAME COLUMN status TO state")
    add_run_sql = "INSERT INTO run_metadata (run_id, started_at, state) VALUES (%s, now(), %s)"
    db.execute(add_run_sql, ("early", "completed"))
    add_partition(db, "early", 0, updated_at=ago(hours=1))
    db.execute(add_run_sql, ("late", "running"))
    add_partition(db, "late", 0, completed=True, updated_at=ago(hours=1))
    settings = settings_for(monkeypatch, db_url, tables__run_metadata__status="state")
    results = run_checks(settings, MISSED, PREMATURE)
    assert [s["run_id"] for s in results[MISSED].samples] == ["late"]
    assert [s["run_id"] for s in results[PREMATURE].samples] == ["early"]
