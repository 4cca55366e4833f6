"""Endpoints and HttpServer: the status page per database, what this replica leads, over HTTP."""

from __future__ import annotations

import datetime as dt
import urllib.request
from typing import cast

from prometheus_client import CollectorRegistry

from alerts import SystemClock
from config import load_settings
from monitor.service.http import Endpoints, HttpServer
from monitor.service.metrics import DatabaseView, StatsCache, StatsSnapshot
from monitor.service.status_page import anchor
from monitor.store import CheckStats, StateStore, StoreStats
from tests.helpers import FakeClock
from tests.monitor.service.page_html import rows, text

AT = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # a fixed snapshot, read at that time


def cache(status: str | None, violations: int = 0) -> StatsCache:
    # refresh() is never called: the snapshot is set, so no state store is needed.
    stats = StatsCache(cast(StateStore, None), SystemClock())
    at = AT
    row = CheckStats("flag_conflict", last_status=status, last_violations=violations,
                     last_success_at=at if status else None)  # fmt: skip
    stats.snapshot = StatsSnapshot(StoreStats(checks={"flag_conflict": row}), loaded_at=1.0)
    stats.store_up = True
    return stats


def page(leads: dict[str, bool], caches: dict[str, StatsCache]) -> str:
    settings = load_settings()
    views = {
        name: DatabaseView(settings, caches[name], lambda name=name: leads[name]) for name in caches
    }
    endpoints = Endpoints(
        CollectorRegistry(), views, scheduler_running=lambda: True, clock=FakeClock(AT)
    )
    return endpoints.status_page()


def test_each_database_has_its_heading_and_its_own_results():
    html = page({"eu": True, "us": False}, {"eu": cache("violation", 3), "us": cache(None)})
    words = text(html)
    assert words.index("Database eu") < words.index("Database us")
    assert rows(html)[anchor("eu", "flag_conflict")][2:5] == [
        "violations", "3 violations", "2030-01-02 03:04:05 UTC (just now)"
    ]
    assert rows(html)[anchor("us", "flag_conflict")][2:5] == ["not run yet", "—", "never"]
    assert "This replica: leader of eu (runs their checks)." in words


def test_a_replica_leading_none_is_a_follower():
    words = text(page({"eu": False, "us": False}, {"eu": cache("ok"), "us": cache("ok")}))
    assert "This replica: follower (serves metrics)." in words
    assert "State store: reachable." in words
    words = text(page({"eu": True, "us": True}, {"eu": cache("ok"), "us": cache("ok")}))
    assert "This replica: leader of eu, us (runs their checks)." in words


def test_the_page_and_its_query_over_http():
    endpoints = Endpoints(
        CollectorRegistry(),
        {"default": DatabaseView(load_settings(), cache("ok"), lambda: True)},
        scheduler_running=lambda: True, clock=FakeClock(AT),
    )  # fmt: skip
    server = HttpServer(endpoints, "127.0.0.1", 0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/?check=flag_conflict"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.headers["Cache-Control"] == "no-store"
            body = response.read().decode()
    finally:
        server.stop()
    assert list(rows(body)) == [anchor("default", "flag_conflict")]
    assert "Generated at 2030-01-02 03:04:05 UTC" in text(body)
