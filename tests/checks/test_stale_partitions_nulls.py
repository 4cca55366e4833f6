"""stale_partitions where the flags may be NULL: NULL is "not yet", as coalesce(flag, false) was."""

from __future__ import annotations

from checks import Mode
from tests.factories import add_run, ago
from tests.helpers import run_checks, settings_for

FLAGS = [  # (completed, failed, pending)
    (None, None, True),
    (None, False, True),
    (False, None, True),
    (False, False, True),
    (True, None, False),
    (None, True, False),
    (True, False, False),
    (False, True, False),
]


def test_null_flags_count_as_pending_in_incremental_and_full_sweeps(monkeypatch, db_url, db):
    db.execute("ALTER TABLE partition_progress ALTER completed DROP NOT NULL")
    db.execute("ALTER TABLE partition_progress ALTER failed DROP NOT NULL")
    settings = settings_for(monkeypatch, db_url)
    add_run(db, "s")
    assert run_checks(settings, "stale_partitions")["stale_partitions"].violations == 0
    for pid, (completed, failed, _) in enumerate(FLAGS):
        db.execute(
            "INSERT INTO partition_progress (run_id, partition_id, completed, failed, updated_at)"
            " VALUES ('s', %s, %s, %s, %s)",
            (pid, completed, failed, ago(minutes=31)),
        )
    pending = [pid for pid, (_, _, is_pending) in enumerate(FLAGS) if is_pending]
    for full, mode in ((False, Mode.INCREMENTAL), (True, Mode.FULL)):
        result = run_checks(settings, "stale_partitions", full=full)["stale_partitions"]
        assert result.mode is mode
        assert result.violations == len(pending)
        assert [s["partition_id"] for s in result.samples] == pending
