"""The readers verdict from pg_stat_statements samples (pure): every gap in coverage is unknown."""

from __future__ import annotations

import datetime as dt

import pytest

from monitor.gate.pgss import Coverage, Sample, Snapshot, lost, verdict

RESET = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
BASELINE = Sample(True, 3, RESET, 120)


def snap(**changes) -> Snapshot:
    values = {"available": True, "dealloc": 3, "stats_reset": RESET, "monitor_role": "dq_monitor"}
    return Snapshot(**(values | changes))


def test_full_coverage_and_no_reader_is_none():
    item = verdict(snap(), Coverage(BASELINE, []))
    assert item["status"] == "none"
    assert "replicas" in item["undetectable"]


@pytest.mark.parametrize(
    ("current", "coverage", "words"),
    [
        (snap(available=False), Coverage(BASELINE, []), "not installed"),
        (snap(), Coverage(None, []), "no pg_stat_statements sample"),
        (snap(), Coverage(Sample(True, 3, RESET, None), []), "per-statement counters"),
        (snap(stats_reset=NOW), Coverage(BASELINE, []), "statistics were reset"),
        (snap(dealloc=9), Coverage(BASELINE, []), "6 statements were evicted"),
        (snap(), Coverage(BASELINE, [(NOW, 2, "app (2)")]), "2 statements disappeared"),
        (snap(hidden={"app": 4}), Coverage(BASELINE, []), "GRANT pg_read_all_stats TO dq_monitor"),
        (snap(textless=1), Coverage(BASELINE, []), "no text"),
        (snap(untracked=["role app: track = none"]), Coverage(BASELINE, []), "role app"),
    ],
    ids=["missing", "no-baseline", "no-statements", "reset", "evicted", "lost", "hidden",
         "textless", "untracked"],
)  # fmt: skip
def test_every_gap_in_coverage_is_unknown(current, coverage, words):
    item = verdict(current, coverage)
    assert item["status"] == "unknown"
    assert words in item["reason"]


def test_several_gaps_are_all_named():
    item = verdict(snap(dealloc=4, hidden={"app": 1}), Coverage(BASELINE, [(NOW, 1, "x (1)")]))
    assert item["reason"].count("; ") >= 2


def test_a_reader_is_found_before_any_gap_is_considered():
    reader = {"role": "app", "calls": 3, "query": "SELECT * FROM run_metadata",
              "why": ["reads * from run_metadata"]}  # fmt: skip
    item = verdict(snap(readers=[reader], dealloc=9), Coverage(None, []))
    assert item["status"] == "found"
    assert "app (3 calls, reads * from run_metadata)" in item["reason"]


def test_statements_that_vanish_shrink_or_restart_are_lost():
    since = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    before = {(10, 1, 1, True): (5, since), (11, 1, 2, True): (5, since),
              (11, 1, 3, True): (5, since), (12, 1, 4, True): (5, since)}  # fmt: skip
    after = {(11, 1, 2, True): (4, since), (11, 1, 3, True): (9, NOW),
             (12, 1, 4, True): (7, since), (12, 1, 5, True): (1, NOW)}  # fmt: skip
    assert lost(before, after, {10: "app", 11: "etl"}) == (3, "app (1), etl (2)")
