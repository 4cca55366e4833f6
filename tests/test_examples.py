"""The shipped example configuration loads, and its seed queries run as documented."""

from __future__ import annotations

from pathlib import Path

from config import load_settings
from tests.factories import add_partition, add_run, seed_race
from tests.helpers import run_checks

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dq-monitor.toml"


def test_example_loads_with_the_seed_queries_disabled():
    settings = load_settings(EXAMPLE)
    custom = {c.name: c for c in settings.checks.custom}
    assert set(custom) == {"seed_counts_per_run", "seed_counter_drift"}
    assert not any(c.enabled for c in custom.values())


def test_seed_drift_query_reports_expected_drift_that_counter_writes_does_not(
    monkeypatch, db_url, db
):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    settings = load_settings(EXAMPLE)
    seed_race(db, "race")  # counter says 3 failed, which matches partition_progress
    add_run(db, "after_fix")  # counters no longer maintained: stays 0
    add_partition(db, "after_fix", 0, failed=True)
    results = run_checks(settings, "seed_counter_drift", "seed_counts_per_run", "counter_writes")
    assert results["seed_counter_drift"].violations == 1
    assert results["seed_counter_drift"].samples == (
        {"run_id": "after_fix", "old_counter": 0, "actual_failed": 1},
    )
    assert results["seed_counts_per_run"].violations == 2
    assert results["counter_writes"].violations == 0


def test_example_shows_every_built_in_check_but_those_without_settings_of_their_own():
    import tomllib

    from checks import REGISTRY

    shown = set(tomllib.loads(EXAMPLE.read_text())["checks"]) - {"custom"}
    assert shown <= set(REGISTRY)
    # The consistency parts sharing the defaults may be left out; every other check is shown.
    assert {"stale_partitions", "counter_writes", "consolidation_missed",
            "premature_consolidation"} <= shown  # fmt: skip
