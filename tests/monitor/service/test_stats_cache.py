"""StatsCache: stats every refresh, the 24 h trends at most once a minute, the last copy kept."""

from __future__ import annotations

import datetime as dt

from monitor.service.stats_cache import TREND_REFRESH_SECONDS, StatsCache
from monitor.store import TrendBucket
from tests.monitor.service.page_state import page_state

MIN = dt.timedelta(minutes=1)


def test_trends_are_reread_once_a_minute_and_stats_every_time(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        cache = StatsCache(state.app.store, state.clock)
        state.ok("rows_ok", 1, 2 * MIN)
        assert cache.refresh()
        assert cache.snapshot.trends["rows_ok"] == (TrendBucket(0, 1, 0, 1),)
        state.ok("rows_ok", 4, MIN)
        state.clock.advance(seconds=TREND_REFRESH_SECONDS - 1)
        assert cache.refresh()
        assert cache.snapshot.stats.check("rows_ok").last_violations == 4  # stats: at once
        assert cache.snapshot.trends["rows_ok"] == (TrendBucket(0, 1, 0, 1),)  # trends: later
        state.clock.advance(seconds=1)
        assert cache.refresh()
        assert cache.snapshot.trends["rows_ok"] == (TrendBucket(0, 4, 0, 2),)


def test_a_failed_refresh_keeps_the_last_snapshot(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        cache = StatsCache(state.app.store, state.clock)
        state.ok("rows_ok", 2, MIN)
        assert cache.refresh()
        before = cache.snapshot
        db.execute("ALTER SCHEMA dq_monitor RENAME TO dq_monitor_gone")  # every read fails
        state.clock.advance(seconds=TREND_REFRESH_SECONDS)
        assert not cache.refresh()
    assert cache.store_up is False
    assert cache.snapshot is before
    assert cache.snapshot.trends["rows_ok"] == (TrendBucket(0, 2, 0, 1),)
