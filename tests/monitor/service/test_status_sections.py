"""The status page's gate per plan (open, closed, unknown, stale) and its alert delivery."""

from __future__ import annotations

import datetime as dt
import re

from monitor.gate import DROP_COUNTER_COLUMNS, PARTITION_FLAGS_EXCLUSIVE
from monitor.service.page_text import span
from monitor.service.status_sections import gate_section
from tests.monitor.service.page_html import text
from tests.monitor.service.page_state import page_state

DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)


def plan_text(section: str, plan: str) -> str:
    row = re.search(rf"<tr><td data-l='plan'><strong>{plan}</strong>.*?</tr>", section)
    assert row, f"no row for {plan}"
    return text(row.group(0))


def test_a_plan_not_yet_open_shows_its_headline_and_how_much_of_the_period_passed(
    monkeypatch, db_url, db
):
    with page_state(monkeypatch, db_url, db) as state:
        headline = "NOT YET: clean for 5d3h of 7d, complete 2030-01-01 00:00 UTC"
        state.gate(DROP_COUNTER_COLUMNS, "not_yet", headline, 5 * DAY + 3 * HOUR)
        state.gate(PARTITION_FLAGS_EXCLUSIVE, "open", "OPEN: the constraint may be added",
                   8 * DAY)  # fmt: skip
        section = gate_section(state.view(), state.clock.now())
    row = plan_text(section, DROP_COUNTER_COLUMNS)
    assert "closed: not yet " + headline in row
    assert "5 d 3 h of 7 d clean (73%)" in row
    assert "(2 min ago)" in row
    assert "<span style='width:73%'>" in section
    opened = plan_text(section, PARTITION_FLAGS_EXCLUSIVE)
    assert "open OPEN: the constraint may be added" in opened
    assert "7 d of 7 d clean (100%)" in opened  # never past the bar's end
    assert "add CHECK (NOT (completed AND failed)) to partition_progress" in opened


def test_blocked_unknown_and_stale_never_look_open(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db, DQ_GATE__EVALUATE_INTERVAL="1h") as state:
        state.gate(DROP_COUNTER_COLUMNS, "blocked", "BLOCKED by: dashboard_mismatch",
                   2 * DAY)  # fmt: skip
        blocked = gate_section(state.view(), state.clock.now())
        state.gate(DROP_COUNTER_COLUMNS, "open", "OPEN: the deprecated counters may be dropped",
                   9 * DAY, evaluated_ago=4 * HOUR)  # fmt: skip
        stale = gate_section(state.view(), state.clock.now())
    row = plan_text(blocked, DROP_COUNTER_COLUMNS)
    assert "closed: blocked BLOCKED by: dashboard_mismatch" in row
    assert "0 s of 7 d clean (0%)" in row  # a blocked streak counts nothing
    unknown = plan_text(blocked, PARTITION_FLAGS_EXCLUSIVE)
    assert "unknown not evaluated yet (the leader evaluates it every 1h)" in unknown
    assert "unknown of 7 d" in unknown
    assert "never" in unknown
    assert "clean period unknown" in blocked  # the hatched bar's label, never a bar of progress
    old = plan_text(stale, DROP_COUNTER_COLUMNS)
    assert old.startswith(f"{DROP_COUNTER_COLUMNS} ")
    assert "unknown last known: OPEN: the deprecated counters may be dropped (no evaluation " \
        "since; is a leader up?)" in old
    assert "unknown of 7 d" in old
    assert "(4 h ago)" in old
    assert "b-ok" not in stale.split(DROP_COUNTER_COLUMNS, 2)[1].split("</tr>")[0]


def test_the_page_shows_pending_and_dead_messages_and_what_to_do(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        state.messages("pending", 1)
        clean = text(state.endpoints().status_page())
        state.messages("dead", 2)
        state.messages("pending", 2, route="other")
        db.execute("INSERT INTO dq_monitor.delivery_stats (route, dead_total) VALUES ('ops', 2)")
        dead = state.endpoints().status_page()
        view = state.view()
        both = state.endpoints({"default": view, "other": view}).status_page()
    assert "dq-monitor alerts retry --all-dead --database default sends" in text(both)
    assert "Pending: 1 message waiting to be delivered. Dead: none" in clean
    words = text(dead)
    assert "Pending: 3 messages waiting to be delivered. Dead: 2 messages" in words
    assert "<span class='b b-dead'>2 messages</span>" in dead
    assert ("2 messages given up undelivered, not retried by themselves (by route, all time: "
            "ops 2).") in words  # fmt: skip
    assert "dq-monitor alerts outbox --dead lists them" in words
    assert "dq-monitor alerts test --route NAME" in words
    assert "dq-monitor alerts retry --all-dead sends them again" in words


def test_spans_read_at_a_glance():
    assert [span(s) for s in (0, 40, 600, 3600, 3 * 3600 + 1200, 86400, 5 * 86400 + 3 * 3600)] \
        == ["0 s", "40 s", "10 min", "1 h", "3 h 20 min", "1 d", "5 d 3 h"]  # fmt: skip
