"""The 24 h sparkline: buckets from real run rows counted back from the database's clock."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from monitor.service.trend import sparkline, trend_label
from monitor.store import TREND_BUCKETS, TrendBucket
from tests.monitor.service.page_state import page_state

SVG = "{http://www.w3.org/2000/svg}"
MIN = dt.timedelta(minutes=1)


def test_buckets_hold_each_half_hours_most_violations_errors_and_gaps(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("rows_ok", 3, 10 * MIN)
        state.ok("rows_ok", 1, 20 * MIN)  # same half hour: the bucket keeps the most, 3
        state.ok("rows_ok", 1, 40 * MIN)
        state.error("rows_ok", "connection lost", 45 * MIN)
        state.ok("rows_ok", 0, 5 * 60 * MIN + 5 * MIN)
        state.error("rows_ok", "timed out", 7 * 60 * MIN)  # an error alone in its bucket
        state.ok("rows_ok", 9, 25 * 60 * MIN)  # before the window
        buckets = state.view().cache.snapshot.trends["rows_ok"]
    assert buckets == (
        TrendBucket(0, 3, errors=0, runs=2),
        TrendBucket(1, 1, errors=1, runs=2),
        TrendBucket(10, 0, errors=0, runs=1),
        TrendBucket(14, None, errors=1, runs=1),
    )


def test_the_window_ends_at_the_databases_clock_not_the_hosts(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("rows_ok", 2, 10 * MIN)
        state.ok("rows_ok", 4, -2 * MIN)  # stamped by a host running ahead: the newest bucket
        state.clock.advance(days=400)  # the host clock says nothing about the window
        snapshot = state.view().cache.snapshot
    assert snapshot.trends["rows_ok"] == (TrendBucket(0, 4, errors=0, runs=2),)
    assert snapshot.trends_at is not None
    assert abs((snapshot.trends_at - state.now).total_seconds()) < 3600  # the database's now()


def test_a_check_without_runs_in_the_window_has_no_buckets(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("rows_ok", 1, 30 * 60 * MIN)
        snapshot = state.view().cache.snapshot
    assert "rows_ok" not in snapshot.trends
    assert snapshot.stats.latest["rows_ok"].violations == 1  # the latest run is still known


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def ticks(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.findall(f"{SVG}rect") if r.get("class") == "te"]


def test_the_svg_draws_segments_broken_at_gaps_and_marks_errors():
    buckets = (
        TrendBucket(0, 3, 0, 2), TrendBucket(1, 1, 1, 2), TrendBucket(10, 0, 0, 1),
        TrendBucket(14, None, 1, 1),
    )  # fmt: skip
    root = parse(sparkline(buckets))
    label = "violations over the last 24 h: max 3, latest 3, 2 errors"
    assert root.get("aria-label") == label
    assert root.get("role") == "img"
    assert root.findtext(f"{SVG}title") == label
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 1
    assert len(lines[0].get("points", "").split()) == 2
    assert len(root.findall(f"{SVG}circle")) == 1  # bucket 10, alone between gaps
    assert len(ticks(root)) == 2  # the error ticks of buckets 1 and 14
    # The newest bucket is at the right; more violations are drawn higher (smaller y).
    (x0, y0), (x1, y1) = (map(float, p.split(",")) for p in lines[0].get("points", "").split())
    assert x0 < x1
    assert y0 > y1


def test_labels_say_when_nothing_ran_or_nothing_succeeded():
    assert trend_label(()) == "violations over the last 24 h: no runs"
    assert trend_label((TrendBucket(3, None, 1, 1),)) == (
        "violations over the last 24 h: no successful run, 1 error"
    )
    root = parse(sparkline(()))
    assert root.findall(f"{SVG}polyline") == []
    assert ticks(root) == []
    assert root.get("aria-label") == "violations over the last 24 h: no runs"


def test_the_oldest_bucket_fits_inside_the_drawing():
    root = parse(sparkline((TrendBucket(TREND_BUCKETS - 1, 5, 1, 1),)))
    circle = root.find(f"{SVG}circle")
    assert circle is not None
    assert 0 < float(circle.get("cx", "-1")) < 10
    (rect,) = ticks(root)
    assert rect is not None
    assert float(rect.get("x", "-1")) >= 0
