"""Names of the monitored tables and columns; every one reaches SQL only as an identifier."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

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

    name: SqlName = "run_metadata"
    run_id: SqlName = "run_id"
    started_at: SqlName = "started_at"
    status: SqlName = "status"
    completed_workers: SqlName = "completed_workers"
    failed_workers: SqlName = "failed_workers"


class PartitionProgressNames(_Names):
    """One row per partition of a run: the single source of truth."""

    name: SqlName = "partition_progress"
    run_id: SqlName = "run_id"
    partition_id: SqlName = "partition_id"
    completed: SqlName = "completed"
    failed: SqlName = "failed"
    updated_at: SqlName = "updated_at"


class WorkerRunsNames(_Names):
    """Execution records: what the dashboard's workers table shows."""

    name: SqlName = "worker_runs"
    id: SqlName = "id"
    run_id: SqlName = "run_id"
    partition_id: SqlName = "partition_id"
    status: SqlName = "status"
    started_at: SqlName = "started_at"
    finished_at: SqlName = "finished_at"
    # Values of the status column, not names: they travel as query parameters.
    completed_status: str = "completed"
    failed_status: str = "failed"


class TablesSettings(_Names):
    """Where the job system's tables live and what their columns are called."""

    schema_name: SqlName = "public"
    run_metadata: RunMetadataNames = RunMetadataNames()
    partition_progress: PartitionProgressNames = PartitionProgressNames()
    worker_runs: WorkerRunsNames = WorkerRunsNames()
