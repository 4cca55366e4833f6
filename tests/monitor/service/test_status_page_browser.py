"""The status page in a real browser: headless Chromium at a laptop's and a phone's width."""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest

from monitor.gate import DROP_COUNTER_COLUMNS, PARTITION_FLAGS_EXCLUSIVE
from monitor.service.http import HttpServer
from tests.monitor.service.chromium import chromium, chromium_binary, png_size
from tests.monitor.service.page_state import LONG_NAME, page_state

MIN, DAY = dt.timedelta(minutes=1), dt.timedelta(days=1)
LONG_REASON = (
    "could not read partition_progress: canceling statement due to statement timeout after "
    "30s while scanning the rows of run_metadata_and_partition_progress_joined_for_the_dashboard"
    "_with_a_very_long_identifier_that_has_no_spaces_at_all_so_it_must_wrap_anywhere_please"
)
# Everything the page's text must say, and that no element may stick out of the viewport.
MEASURE = """(() => {
  const width = window.innerWidth, out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > width + 0.5 || r.left < -0.5))
      out.push(`${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className}`
               + ` ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  return {text: document.body.innerText, innerWidth: width,
          scrollWidth: document.documentElement.scrollWidth, outside: out.slice(0, 10)};
})()"""
# How many distinct colours the screenshot has, decoded by the browser itself (no imaging
# library needed): a blank or failed render has one or two.
COLOURS = """new Promise((done, fail) => {
  const img = new Image();
  img.onload = () => {
    const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    done(seen.size);
  };
  img.onerror = () => fail('the screenshot does not decode');
  img.src = 'data:image/png;base64,%s';
})"""

pytestmark = pytest.mark.slow


@pytest.fixture
def browser_available():
    if chromium_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium); CI requires it")


def test_the_page_renders_and_fits_at_laptop_and_phone_widths(
    browser_available, monkeypatch, db_url, db, tmp_path
):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("rows_ok", 0, 10 * MIN)
        for ago in (70, 40, 3):
            state.ok("dashboard_mismatch", 3 if ago < 60 else 1, ago * MIN, samples=3)
        state.ok("stale_partitions", 2, 20 * MIN)
        state.error("flag_conflict", LONG_REASON, 2 * MIN)
        state.ok(LONG_NAME, 12, 5 * MIN)
        state.gate(DROP_COUNTER_COLUMNS, "not_yet", "NOT YET: clean for 5d3h of 7d, complete "
                   "2030-01-01 00:00 UTC", 5 * DAY + 3 * dt.timedelta(hours=1))  # fmt: skip
        state.gate(PARTITION_FLAGS_EXCLUSIVE, "blocked", "BLOCKED by: flag_conflict", None)
        state.messages("dead", 2)
        state.messages("pending", 1)
        server = HttpServer(state.endpoints(), "127.0.0.1", 0)
        server.start()
        try:
            url = f"http://127.0.0.1:{server.port}/"
            with chromium(tmp_path / "profile") as page:
                for width, height in ((1280, 800), (390, 844)):
                    page.open(url, width, height)
                    seen = page.evaluate(MEASURE)
                    shot = page.screenshot(tmp_path / f"status-{width}x{height}.png")
                    page.screenshot(tmp_path / f"status-{width}-full.png", full=True)
                    colours = page.evaluate(COLOURS % base64.b64encode(shot).decode(),
                                            awaited=True)  # fmt: skip
                    assert png_size(shot) == (width, height)
                    assert colours > 20, f"{width}px: the screenshot looks blank ({colours})"
                    assert seen["innerWidth"] == width
                    assert seen["scrollWidth"] <= width, f"{width}px: the page scrolls sideways"
                    assert seen["outside"] == [], f"{width}px: past the viewport: {seen['outside']}"
                    words = seen["text"]
                    for name in ("rows_ok", "dashboard_mismatch", "flag_conflict", LONG_NAME):
                        assert name in words, f"{width}px: {name} is not on the page"
                    for shown in ("not run yet", "3 violations", "12 violations", "CRITICAL",
                                  "WARNING", "could not read partition_progress",
                                  "NOT YET: clean for 5d3h of 7d", "5 d 3 h of 7 d clean (73%)",
                                  "BLOCKED by: flag_conflict", "Generated at",
                                  "Dead: 2 messages", "Pending: 1 message waiting"):  # fmt: skip
                        assert shown.lower() in words.lower(), f"{width}px: no {shown!r}"
        finally:
            server.stop()
