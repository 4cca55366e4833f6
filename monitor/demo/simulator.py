"""A toy job system for the demo: healthy runs, the seed's race, stuck workers, old builds, and
consolidation too early or never.

It is the monitored application, not the monitor: it writes run_metadata, partition_progress
and worker_runs the way the real workers do, bugs included.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg

log = logging.getLogger(__name__)

PARTITIONS = 6


@dataclass
class SimRun:
    run_id: str
    kind: str  # healthy, race, stuck, old_build, conflict, missed, premature
    pending: list[int] = field(default_factory=lambda: list(range(PARTITIONS)))
    step: int = 0


class Simulator:
    """Advances the job system by one tick per call; every change is its own transaction."""

    def __init__(self, conn: psycopg.Connection[Any], seed: int = 5) -> None:
        self.conn = conn
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self.active: list[SimRun] = []
        self.started = 0
        self.counts: dict[str, int] = {}
        # The scenarios in turn, so a short demo shows each defect early.
        self._plan = [
            "race", "stuck", "missed", "old_build", "conflict", "premature", "healthy", "healthy",
        ]  # fmt: skip
        self._retire = threading.Event()
        self.retired = threading.Event()  # set once the old build is gone and the data repaired

    def retire_old_build(self) -> None:
        """Deploy the fix: from the next tick on, only healthy runs (see _retire_now)."""
        self._retire.set()

    def tick(self) -> None:
        if self._retire.is_set() and not self.retired.is_set():
            self._retire_now()
        if self.started == 0 or self.rng.random() < 0.4:
            self._start(self._plan[self.started % len(self._plan)])
        for run in list(self.active):
            self._advance(run)
            if not run.pending:
                # The worker's partition count says the run is complete: it consolidates,
                # except where the count is wrong and it never sees the run complete.
                if run.kind != "missed":
                    self.conn.execute(
                        "UPDATE run_metadata SET status = 'completed' WHERE run_id = %s",
                        (run.run_id,))  # fmt: skip
                self.active.remove(run)

    def _start(self, kind: str) -> None:
        self.started += 1
        run = SimRun(f"{kind}-{self.started:03d}", kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        with self.conn.transaction():
            self.conn.execute("INSERT INTO run_metadata (run_id, status) VALUES (%s, 'running')",
                              (run.run_id,))  # fmt: skip
            self.conn.execute(
                "INSERT INTO partition_progress (run_id, partition_id)"
                " SELECT %s, g FROM generate_series(0, %s) g",
                (run.run_id, PARTITIONS - 1),
            )
        self.active.append(run)

    def _advance(self, run: SimRun) -> None:
        run.step += 1
        if run.kind == "race" and run.step == 1:
            self._race(run)
            return
        if run.kind == "stuck":
            if run.pending == [0]:
                return  # partition 0's worker died: it stays pending and goes stale
            pid = run.pending.pop()
        else:
            pid = run.pending.pop(0)
        failed = run.kind == "healthy" and self.rng.random() < 0.15
        status = "failed" if failed else "completed"
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
                " VALUES (%s, %s, %s, now(), now())", (run.run_id, pid, status))  # fmt: skip
            both = run.kind == "conflict" and pid == 1  # a buggy path sets both flags
            self.conn.execute(
                "UPDATE partition_progress SET completed = %s, failed = %s, updated_at = now()"
                " WHERE run_id = %s AND partition_id = %s",
                (not failed or both, failed or both, run.run_id, pid),
            )
            if run.kind == "premature" and pid == 1:
                # A wrong count: the run is consolidated now, and the messages of the other
                # partitions are dropped, so they stay pending under a completed run.
                run.pending.clear()
            if run.kind == "old_build":
                # An old worker build still increments the deprecated counter.
                self.conn.execute(
                    "UPDATE run_metadata SET completed_workers = completed_workers + 1"
                    " WHERE run_id = %s", (run.run_id,))  # fmt: skip
                # Its dashboard still reads the other counter: a reader for the gate to see.
                self.conn.execute("SELECT failed_workers FROM run_metadata WHERE run_id = %s",
                                  (run.run_id,))  # fmt: skip

    def _race(self, run: SimRun) -> None:
        """The seed's race: three workers fail, a retry deletes one's row, it fails again."""
        rid = run.run_id
        for pid in (0, 1, 2):
            self.conn.execute(
                "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
                " VALUES (%s, %s, 'failed', now(), now())", (rid, pid))  # fmt: skip
            self.conn.execute(
                "UPDATE partition_progress SET failed = true, updated_at = now()"
                " WHERE run_id = %s AND partition_id = %s", (rid, pid))  # fmt: skip
        # The user retries partition 2: its worker_runs row is deleted and the flag reset.
        self.conn.execute("DELETE FROM worker_runs WHERE run_id = %s AND partition_id = 2", (rid,))
        self.conn.execute(
            "UPDATE partition_progress SET failed = false, updated_at = now()"
            " WHERE run_id = %s AND partition_id = 2", (rid,))  # fmt: skip
        # The redelivered message fails again: the flag is set, but the row it would update
        # is gone. The dashboard now says 3 failed; the workers table says 2.
        self.conn.execute(
            "UPDATE partition_progress SET failed = true, updated_at = now()"
            " WHERE run_id = %s AND partition_id = 2", (rid,))  # fmt: skip
        run.pending = [p for p in run.pending if p not in (0, 1, 2)]

    def _retire_now(self) -> None:
        """The fixed build replaces every worker, and the damage the bugs left is repaired
        (flags set by the old path, a retried partition's lost worker row), so the checks
        can come clean; in this thread, so no old-build statement runs after it."""
        self._plan = ["healthy"]
        for run in self.active:
            run.kind = "healthy"
        with self.conn.transaction():
            self.conn.execute(
                "UPDATE partition_progress p SET failed = false, updated_at = now()"
                " WHERE p.completed AND p.failed")  # fmt: skip
            self.conn.execute(
                "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
                " SELECT p.run_id, p.partition_id, CASE WHEN p.failed THEN 'failed'"
                " ELSE 'completed' END, now(), now() FROM partition_progress p"
                " WHERE (p.completed OR p.failed) AND NOT EXISTS (SELECT 1 FROM worker_runs w"
                "  WHERE w.run_id = p.run_id AND w.partition_id = p.partition_id)")  # fmt: skip
        self.retired.set()
