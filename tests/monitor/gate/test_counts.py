"""Counts in what the release manager reads (dry run, readers evidence) agree with their nouns."""

from __future__ import annotations

import pytest

from monitor.gate import PLAN_NAMES, load_plan
from monitor.gate.migration import archived_line, restored_line
from monitor.gate.pgss import Coverage, verdict
from tests.helpers import settings_for
from tests.monitor.gate.test_pgss import BASELINE, NOW, snap


@pytest.mark.parametrize("plan", PLAN_NAMES)
@pytest.mark.parametrize(("n", "words"), [(1, "at most 1 attempt with"),
                                          (2, "at most 2 attempts with")])  # fmt: skip
def test_the_dry_run_counts_lock_attempts(plan, n, words, monkeypatch):
    settings = settings_for(monkeypatch, "postgresql://dq@db.example.com/jobs",
                            gate__lock_retries=str(n))  # fmt: skip
    assert words in load_plan(settings, plan).describe(settings)


@pytest.mark.parametrize(
    ("current", "coverage", "words"),
    [
        (snap(dealloc=4), Coverage(BASELINE, []), "1 statement was evicted"),
        (snap(dealloc=5), Coverage(BASELINE, []), "2 statements were evicted"),
        (snap(textless=1), Coverage(BASELINE, []), "1 statement has no text"),
        (snap(textless=2), Coverage(BASELINE, []), "2 statements have no text"),
        (snap(), Coverage(BASELINE, [(NOW, 1, "app (1)")]), "1 statement disappeared"),
        (snap(), Coverage(BASELINE, [(NOW, 2, "app (2)")]), "2 statements disappeared"),
    ],
)
def test_the_readers_evidence_counts_statements(current, coverage, words):
    assert words in verdict(current, coverage)["reason"]


@pytest.mark.parametrize(("n", "rows"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows"),
                                         (1204, "1,204 rows")])  # fmt: skip
def test_the_migration_counts_archived_and_restored_rows(n, rows):
    assert archived_line(n) == (
        f"archived {rows} into the state store; count and checksum verified"
    )
    assert restored_line(n, 0) == f"restored {rows}; values verified against the archive"


@pytest.mark.parametrize(("gone", "note"), [
    (1, "1 archived run no longer exists and was skipped"),
    (2, "2 archived runs no longer exist and were skipped"),
])  # fmt: skip
def test_the_rollback_counts_runs_gone_since(gone, note):
    assert restored_line(5, gone).endswith(f"against the archive; {note}")
