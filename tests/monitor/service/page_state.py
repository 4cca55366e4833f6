"""A real state store filled with runs, gate decisions and dead messages, for the status page."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from checks import Check, Evaluation, Mode, RunFindings, all_checks
from config import DqError, load_settings
from monitor.app import App
from monitor.gate import service_key
from monitor.service.http import Endpoints
from monitor.service.metrics import DatabaseView, StatsCache
from tests.helpers import FakeClock

LONG_NAME = "partition_flags_that_disagree_with_the_worker_rows_of_their_run"
CUSTOM = [
    {"name": "rows_ok", "sql": "SELECT 1 WHERE false", "severity": "warning"},
    {"name": LONG_NAME, "sql": "SELECT 1 WHERE false", "severity": "critical"},
]


def db_now(conn: psycopg.Connection) -> dt.datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


@dataclass
class PageState:
    """An App on the test database with a clock at the database's now(), and its checks."""

    app: App
    clock: FakeClock
    conn: psycopg.Connection
    now: dt.datetime

    @property
    def checks(self) -> dict[str, Check]:
        return {c.name: c for c in all_checks(self.app.settings)}

    def ok(self, name: str, violations: int, ago: dt.timedelta, samples: int = 2) -> None:
        """A successful run that took 1 s and ended `ago` before the database's now(), finding
        `violations`."""
        at = self.now - ago
        rows = tuple({"run_id": f"r{i}", "note": f"sample {i}"} for i in range(samples))
        findings = (RunFindings("", violations, rows),) if violations else ()
        evaluation = Evaluation(Mode.FULL, at, at, findings, judged=None)
        self.app.store.record(
            self.checks[name], evaluation, started_at=at - dt.timedelta(seconds=1),
            finished_at=at, duration=1.0, requested_mode=Mode.FULL,
        )  # fmt: skip

    def error(self, name: str, message: str, ago: dt.timedelta) -> None:
        at = self.now - ago
        self.app.store.record(
            self.checks[name], DqError(message), started_at=at - dt.timedelta(seconds=1),
            finished_at=at, duration=1.0, requested_mode=Mode.FULL,
        )  # fmt: skip

    def gate(self, plan: str, decision: str, headline: str, clean_for: dt.timedelta | None,
             evaluated_ago: dt.timedelta = dt.timedelta(minutes=2),
             required: dt.timedelta = dt.timedelta(days=7)) -> None:  # fmt: skip
        """Publish a plan's decision as the leader's gate duty does (gate_state.py)."""
        evaluated = self.now - evaluated_ago
        since = None if clean_for is None else (evaluated - clean_for).isoformat()
        self.app.store.set_service_state(service_key(plan), {
            "decision": decision, "headline": headline, "clean_since": since,
            "required_seconds": required.total_seconds(), "evaluated_at": evaluated.isoformat(),
            "settings": {},
        })  # fmt: skip

    def messages(self, status: str, n: int, route: str = "ops") -> None:
        for i in range(n):
            self.conn.execute(
                "INSERT INTO dq_monitor.alert_outbox (idempotency_key, fingerprint, check_name,"
                " route, kind, payload, status, created_at, next_attempt_at)"
                " VALUES (%s, 'f', 'rows_ok', %s, 'firing', %s, %s, now(), now())",
                (f"{status}-{route}-{i}", route, json.dumps({}), status),
            )

    def view(self, leader: bool = True) -> DatabaseView:
        cache = StatsCache(self.app.store, self.clock)
        assert cache.refresh()
        return DatabaseView(self.app.settings, cache, lambda: leader)

    def endpoints(self, views: dict[str, DatabaseView] | None = None) -> Endpoints:
        views = views or {"default": self.view()}
        return Endpoints(CollectorRegistry(), views, scheduler_running=lambda: True,
                         clock=self.clock)  # fmt: skip


@contextmanager
def page_state(
    monkeypatch: pytest.MonkeyPatch, db_url: str, conn: psycopg.Connection, **env: str
) -> Iterator[PageState]:
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_CHECKS__CUSTOM", json.dumps(CUSTOM))
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([{"name": "ops", "type": "console"}]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    now = db_now(conn)
    clock = FakeClock(now)
    app = App.open(load_settings(), clock=clock)
    try:
        yield PageState(app, clock, conn, now)
    finally:
        app.close()
