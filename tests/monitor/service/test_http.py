"""The status page: each database's checks under its own heading, and what this replica leads."""

from __future__ import annotations

import datetime as dt
import re
from typing import cast

from prometheus_client import CollectorRegistry

from alerts import SystemClock
from config import load_settings
from monitor.service.http import Endpoints
from monitor.service.metrics import DatabaseView, StatsCache, StatsSnapshot
from monitor.store import CheckStats, StateStore, StoreStats


def cache(status: str | None, violations: int = 0) -> StatsCache:
    # refresh() is never called: the snapshot is set, so no state store is needed.
    stats = StatsCache(cast(StateStore, None), SystemClock())
    at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
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
    endpoints = Endpoints(CollectorRegistry(), views, scheduler_running=lambda: True)
    return endpoints.status_page()


def rows(html: str, database: str) -> dict[str, list[str]]:
    """The check rows in `database`'s table: check -> its cells."""
    section = html.split(f"<h2 id='{database}'>", 1)[1].split("</table>", 1)[0]
    found = {}
    for row in re.findall(r"<tr><td>(.*?)</td></tr>", section):
        cells = re.split(r"</td><td[^>]*>", row)
        found[cells[0]] = cells[1:]
    return found


def test_each_database_has_its_heading_and_its_own_results():
    html = page({"eu": True, "us": False}, {"eu": cache("violation", 3), "us": cache(None)})
    assert html.index("<h2 id='eu'>database eu</h2>") < html.index("<h2 id='us'>database us</h2>")
    assert rows(html, "eu")["flag_conflict"] == ["violation", "3", "2030-01-02 03:04:05 UTC"]
    assert rows(html, "us")["flag_conflict"] == ["not run yet", "0", "never"]
    assert "This replica: leader of eu (runs their checks)." in html


def test_a_replica_leading_none_is_a_follower():
    html = page({"eu": False, "us": False}, {"eu": cache("ok"), "us": cache("ok")})
    assert "This replica: follower (serves metrics)." in html
    assert "State store: reachable." in html
    html = page({"eu": True, "us": True}, {"eu": cache("ok"), "us": cache("ok")})
    assert "This replica: leader of eu, us (runs their checks)." in html
