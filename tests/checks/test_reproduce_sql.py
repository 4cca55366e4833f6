"""Each check's "SQL to reproduce" runs as written and finds what the check found."""

from __future__ import annotations

import pytest

from checks import REGISTRY, all_checks
from config import load_settings
from tests.factories import add_partition, add_run, ago, seed_race


@pytest.mark.parametrize(
    ("name", "rows"),
    [(name, 1) for name in REGISTRY],
)
def test_reproduce_sql_lists_the_findings(db, name, rows):
    seed_race(db, "race")  # mismatch, a missing worker row, non-zero counters
    add_run(db, "odd")
    add_partition(db, "odd", 0, completed=True, failed=True)  # conflict (and a mismatch)
    add_partition(db, "odd", 1, updated_at=ago(hours=2))  # stale
    db.execute("DELETE FROM partition_progress WHERE run_id = 'odd' AND partition_id = 0")
    db.execute("INSERT INTO partition_progress VALUES ('odd', 0, true, true, now())")
    db.execute("INSERT INTO worker_runs (run_id, partition_id, status) VALUES ('odd', 0, 'failed')")
    db.execute(
        "INSERT INTO worker_runs (run_id, partition_id, status) VALUES ('odd', 0, 'completed')"
    )
    # race finished but was never consolidated; odd was, with a partition still pending.
    db.execute("UPDATE run_metadata SET status = 'running' WHERE run_id = 'race'")
    db.execute("UPDATE run_metadata SET status = 'completed' WHERE run_id = 'odd'")
    check = next(c for c in all_checks(load_settings()) if c.name == name)
    found = db.execute(check.reproduce_sql()).fetchall()  # type: ignore[arg-type]
    assert len(found) >= rows
    assert any(row[0] in ("race", "odd") for row in found)
