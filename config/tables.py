"""Names of the monitored tables and columns; every one reaches SQL only as an identifier."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are silently truncated


def _check_identifier(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    if len(value.encode()) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"is longer than PostgreSQL's {_MAX_IDENTIFIER_BYTES}-byte identifier limit"
        )
    return value


# Any other character is allowed: names are always quoted with psycopg.sql.Identifier.
SqlName = Annotated[str, AfterValidator(_check_identifier)]


class _Names(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunMetadataNames(_Names):
    """One row per run; the two counters are deprecated."""

    name: SqlName = Field(default="run_metadata", description="Table with one row per run.")
    run_id: SqlName = Field(default="run_id", description="Column: the run's id (primary key).")
    started_at: SqlName = Field(default="started_at", description="Column: when the run started.")
    status: SqlName = Field(default="status", description="Column: the run's status.")
    completed_workers: SqlName = Field(
        default="completed_workers", description="Column: the deprecated completed-workers counter."
    )
    failed_workers: SqlName = Field(
        default="failed_workers", description="Column: the deprecated failed-workers counter."
    )
    # Values of the status column, not names: they travel as query parameters.
    terminal_statuses: tuple[str, ...] = Field(
        default=("completed", "failed"),
        min_length=1,
        description="Status values of a consolidated run (sent as query parameters).",
    )


class PartitionProgressNames(_Names):
    """One row per partition of a run: the single source of truth."""

    name: SqlName = Field(
        default="partition_progress", description="Table with one row per partition of a run."
    )
    run_id: SqlName = Field(default="run_id", description="Column: the run's id.")
    partition_id: SqlName = Field(
        default="partition_id", description="Column: the partition's id within its run."
    )
    completed: SqlName = Field(
        default="completed", description="Column: true once the partition completed."
    )
    failed: SqlName = Field(default="failed", description="Column: true once the partition failed.")
    updated_at: SqlName = Field(
        default="updated_at", description="Column: when the row last changed."
    )


class WorkerRunsNames(_Names):
    """Execution records: what the dashboard's workers table shows."""

    name: SqlName = Field(default="worker_runs", description="Table of worker execution records.")
    id: SqlName = Field(default="id", description="Column: the execution record's id.")
    run_id: SqlName = Field(default="run_id", description="Column: the run's id.")
    partition_id: SqlName = Field(
        default="partition_id", description="Column: the partition's id within its run."
    )
    status: SqlName = Field(
        default="status",
        description="Column: the execution's status (running, completed or failed).",
    )
    started_at: SqlName = Field(
        default="started_at", description="Column: when the execution started."
    )
    finished_at: SqlName = Field(
        default="finished_at", description="Column: when the execution finished."
    )
    # Values of the status column, not names: they travel as query parameters.
    completed_status: str = Field(
        default="completed",
        description="Status value of a completed execution (sent as a query parameter).",
    )
    failed_status: str = Field(
        default="failed",
        description="Status value of a failed execution (sent as a query parameter).",
    )


class TablesSettings(_Names):
    """Where the job system's tables live and what their columns are called."""

    schema_name: SqlName = Field(default="public", description="Schema of the monitored tables.")
    run_metadata: RunMetadataNames = RunMetadataNames()
    partition_progress: PartitionProgressNames = PartitionProgressNames()
    worker_runs: WorkerRunsNames = WorkerRunsNames()
