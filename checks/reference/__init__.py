"""The monitored system's reference schema and its migration 005, shipped as SQL files."""

from __future__ import annotations

from importlib import resources


def reference_schema() -> str:
    """SQL that creates the reference run_metadata, partition_progress and worker_runs tables."""
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


def migration_005() -> str:
    """SQL of the monitored system's migration 005, which drops the two deprecated counters."""
    return (
        resources.files(__package__)
        .joinpath("005_remove_counter_columns.sql")
        .read_text(encoding="utf-8")
    )
