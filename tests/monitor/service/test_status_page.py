"""The status page from a real state store: severity, status and reason, counts, trend, focus."""

from __future__ import annotations

import datetime as dt
import re

import psycopg

from monitor.service.status_page import Focus, StatusPage, anchor
from tests.monitor.service.page_html import read, rows, text
from tests.monitor.service.page_state import LONG_NAME, page_state

MIN = dt.timedelta(minutes=1)
PASSWORD = "hunter2-page-secret"


def with_password(db_url: str) -> str:
    # The test server trusts local connections, so the password is carried but not needed.
    return psycopg.conninfo.make_conninfo(db_url, password=PASSWORD)


def test_each_check_shows_severity_status_count_last_success_trend_and_samples(
    monkeypatch, db_url, db
):
    url = with_password(db_url)
    with page_state(monkeypatch, url, db) as state:
        state.ok("rows_ok", 0, 10 * MIN)
        state.ok("dashboard_mismatch", 3, 3 * MIN, samples=3)
        state.ok("stale_partitions", 1, 65 * MIN)
        state.ok("flag_conflict", 2, 50 * MIN)
        state.error("flag_conflict", f"cannot connect to {url}: password {PASSWORD} refused\n"
                    "second line of the traceback", 2 * MIN)  # fmt: skip
        page = state.endpoints().status_page()
        at = state.now
    found = rows(page)
    ok = found[anchor("default", "rows_ok")]
    assert ok[:4] == ["rows_ok", "warning", "ok", "0 violations"]
    assert ok[4] == f"{(at - 10 * MIN):%Y-%m-%d %H:%M:%S} UTC (10 min ago)"
    assert ok[5] == "violations over the last 24 h: max 0, latest 0"
    assert ok[6] == "0 samples (JSON)"
    mismatch = found[anchor("default", "dashboard_mismatch")]
    assert mismatch[:4] == ["dashboard_mismatch", "critical", "violations", "3 violations"]
    assert mismatch[4].endswith("UTC (3 min ago)")
    assert mismatch[6] == "3 samples (JSON)"
    assert found[anchor("default", "stale_partitions")][3] == "1 violation"
    assert found[anchor("default", "stale_partitions")][4].endswith("(1 h 5 min ago)")
    error = found[anchor("default", "flag_conflict")]
    assert error[1] == "critical"
    assert error[2].startswith("error cannot connect to ")
    assert "second line" not in error[2]  # one line
    assert error[3] == "2 violations at the last success"
    assert error[5] == "violations over the last 24 h: max 2, latest 2, 1 error"
    assert PASSWORD not in page
    assert "***" in error[2]
    never = found[anchor("default", LONG_NAME)]
    assert never[1:6] == ["critical", "not run yet", "—", "never",
                          "violations over the last 24 h: no runs"]  # fmt: skip
    assert never[6] == "no run yet (JSON)"
    # Severity and status are badges that say it in words, coloured by their class.
    assert "<span class='b b-critical'>critical</span>" in page
    assert "<span class='b b-warning'>warning</span>" in page
    assert "<span class='b b-error'>error</span>" in page
    href = re.search(r"href='(/api/checks/dashboard_mismatch/latest)'", page)
    assert href, "the samples link of a single database names no database"


def test_the_header_says_when_who_and_how_often(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("dashboard_mismatch", 4, 3 * MIN)
        state.error("rows_ok", "boom", 2 * MIN)
        page = state.endpoints().status_page()
        now = state.clock.now()
    words = text(page)
    assert f"Generated at {now:%Y-%m-%d %H:%M:%S} UTC; this page reloads every 30 s." in words
    assert "<meta http-equiv='refresh' content='30'>" in page
    assert "<script" not in page
    assert "This replica: leader (runs the checks). State store: reachable." in words
    assert "2 checks of 9 failing (1 critical, 1 warning)." in words
    for link in ("/metrics", "/healthz", "/readyz"):
        assert f"<a href='{link}'>{link}</a>" in page
    # One database named default: its sections are not labelled "database default".
    assert "Database default" not in words
    assert list(re.findall(r"<h2>(.*?)</h2>", page)) == [
        "Checks", "Migration gate", "Alert delivery"
    ]


def test_all_clear_and_whether_the_monitored_database_answered(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        page = state.endpoints().status_page()
        state.app.store.set_service_state(
            "database", {"up": True, "at": (state.now - 4 * MIN).isoformat()}
        )
        up = text(state.endpoints().status_page())
        state.app.store.set_service_state(
            "database", {"up": False, "at": (state.now - MIN).isoformat()}
        )
        down = text(state.endpoints().status_page())
    assert "all clear No check of 9 checks failing." in text(page)
    assert "Monitored database" not in text(page)  # nothing published yet
    assert "Monitored database: reachable at the latest check (4 min ago)." in up
    assert "Monitored database: UNREACHABLE at the latest check (1 min ago); the results " \
        "below are from before." in down


def test_several_databases_each_have_their_heading_and_samples_links(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("dashboard_mismatch", 1, 3 * MIN)
        page = state.endpoints({"eu": state.view(True), "us": state.view(False)}).status_page()
    words = text(page)
    assert words.index("Database eu") < words.index("Database us")
    assert "This replica: leader of eu (runs their checks)." in words
    assert "/api/checks/dashboard_mismatch/latest?database=us" in page
    assert rows(page)[anchor("us", "dashboard_mismatch")][3] == "1 violation"


def test_a_follower_with_the_store_down_shows_the_last_known_values(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("dashboard_mismatch", 5, 3 * MIN)
        view = state.view(leader=False)
        view.cache.store_up = False  # as a failed refresh leaves it, keeping the snapshot
        state.clock.advance(minutes=7)
        page = state.endpoints({"default": view}).status_page()
    words = text(page)
    assert "This replica: follower (serves metrics)." in words
    assert "State store: UNREACHABLE (showing last known values, loaded " in words
    assert "UTC, 7 min ago)" in words
    assert rows(page)[anchor("default", "dashboard_mismatch")][3] == "5 violations"


def test_an_alert_link_shows_its_check_highlighted_with_a_way_back(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("dashboard_mismatch", 2, 3 * MIN)
        endpoints = state.endpoints({"eu": state.view(), "us": state.view()})
        focused = endpoints.status_page("check=dashboard_mismatch&database=us")
        everywhere = endpoints.status_page("check=dashboard_mismatch")
        unknown = endpoints.status_page("check=no_such_check&database=eu")
        no_database = endpoints.status_page("check=dashboard_mismatch&database=mars")
    reader = read(focused)
    assert list(reader.rows) == [anchor("us", "dashboard_mismatch")]
    assert reader.classes[anchor("us", "dashboard_mismatch")] == "hl"
    assert "Showing check dashboard_mismatch in database us only, as the alert's link asked. " \
        "Show all checks" in text(focused)
    assert "<a href='/'>Show all checks</a>" in focused
    assert "9 checks hidden." in text(focused)  # eu's
    assert set(rows(everywhere)) == {anchor("eu", "dashboard_mismatch"),
                                     anchor("us", "dashboard_mismatch")}  # fmt: skip
    assert "No check named 'no_such_check' in database eu; showing all checks." in text(unknown)
    assert len(rows(unknown)) == 18
    assert "No database named 'mars' here (the databases are eu, us); showing everything." in (
        text(no_database)
    )


def test_everything_shown_is_escaped(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.error("rows_ok", "<script>alert('x')</script> & more", 2 * MIN)
        page = state.endpoints().status_page("check=%3Cb%3Ebold%3C/b%3E")
    assert "<script>" not in page
    assert "<b>bold" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "No check named &#x27;&lt;b&gt;bold&lt;/b&gt;&#x27;" in page


def test_focus_reads_the_query_an_alert_link_carries():
    assert Focus.parse("") == Focus()
    assert Focus.parse("check=a%20b&database=eu") == Focus("a b", "eu")
    assert Focus.parse("check=&database=") == Focus()


def test_the_page_is_rendered_from_memory_only(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.ok("dashboard_mismatch", 2, 3 * MIN)
        view = state.view()
        db.execute("ALTER SCHEMA dq_monitor RENAME TO dq_monitor_gone")  # any read would fail
        page = StatusPage({"default": view}, state.clock, lambda: True).render()
        assert not view.cache.refresh()  # as the rename makes every read of the store do
    assert rows(page)[anchor("default", "dashboard_mismatch")][3] == "2 violations"
