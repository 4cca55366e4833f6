"""Hand-built job-system data for tests: runs, partitions and worker rows at chosen times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import psycopg

NOW = dt.datetime.now(dt.UTC)
OLD = NOW - dt.timedelta(hours=1)  # settled (past the 2-minute settle time)


def ago(**kwargs: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(**kwargs)


def add_run(
    conn: psycopg.Connection,
    run_id: str,
    *,
    completed_workers: int = 0,
    failed_workers: int = 0,
    started_at: dt.datetime | None = None,
    status: str = "running",
) -> None:
    conn.execute(
        "INSERT INTO run_metadata (run_id, started_at, completed_workers, failed_workers, status)"
        " VALUES (%s, %s, %s, %s, %s)",
        (run_id, started_at or OLD, completed_workers, failed_workers, status),
    )


def add_partition(
    conn: psycopg.Connection,
    run_id: str,
    partition_id: int,
    *,
    completed: bool = False,
    failed: bool = False,
    updated_at: dt.datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO partition_progress (run_id, partition_id, completed, failed, updated_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (run_id, partition_id, completed, failed, updated_at or OLD),
    )


def add_worker(
    conn: psycopg.Connection,
    run_id: str,
    partition_id: int,
    status: str,
    *,
    started_at: dt.datetime | None = None,
    finished_at: dt.datetime | None = None,
) -> None:
    started = started_at or OLD
    finished = (
        finished_at if finished_at is not None else (None if status == "running" else started)
    )
    conn.execute(
        "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (run_id, partition_id, status, started, finished),
    )


def healthy_run(
    conn: psycopg.Connection,
    run_id: str,
    *,
    partitions: int = 4,
    failed: Iterable[int] = (),
    at: dt.datetime | None = None,
) -> None:
    """A consistent run: every partition terminal, one worker row matching each flag, and
    consolidated (status completed)."""
    failed = set(failed)
    add_run(conn, run_id, started_at=at, status="completed")
    for pid in range(partitions):
        is_failed = pid in failed
        add_partition(conn, run_id, pid, completed=not is_failed, failed=is_failed, updated_at=at)
        add_worker(conn, run_id, pid, "failed" if is_failed else "completed", started_at=at)


def seed_race(conn: psycopg.Connection, run_id: str, *, at: dt.datetime | None = None) -> None:
    """The seed's race: 3 failed partitions, but a retry deleted one failed worker row.

    partition_progress says 3 failed; worker_runs says 2 (and partition 2 has no row at all).
    """
    add_run(conn, run_id, failed_workers=3, started_at=at, status="completed")
    for pid in range(4):
        add_partition(conn, run_id, pid, completed=pid == 3, failed=pid != 3, updated_at=at)
    add_worker(conn, run_id, 0, "failed", started_at=at)
    add_worker(conn, run_id, 1, "failed", started_at=at)
    add_worker(conn, run_id, 3, "completed", started_at=at)
