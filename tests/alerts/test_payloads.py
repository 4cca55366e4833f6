"""Slack and console renderings of notifications: structure, limits and escaping."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from slack_sdk.models.attachments import BlockAttachment
from slack_sdk.models.blocks import Block

from alerts.console import console_text
from alerts.notification import Kind, Notification
from alerts.slack import slack_payload
from config import Severity

ACTIVE = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)
CREATED = dt.datetime(2024, 5, 1, 12, 30, 0, tzinfo=dt.UTC)
ENDED = dt.datetime(2024, 5, 1, 12, 45, 0, tzinfo=dt.UTC)
BARE_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
MORE = re.compile(r"\+(\d+) more")


def notification(kind: Kind = Kind.FIRING, **changes: Any) -> Notification:
    base = Notification(
        kind=kind,
        check="stale_partitions",
        route="oncall",
        fingerprint="f00dfeed",
        idempotency_key="stale_partitions:f00dfeed:3",
        severity=Severity.CRITICAL,
        description="Partitions not updated for 30 minutes.",
        violations=3,
        previous_violations=2,
        active_since=ACTIVE,
        created_at=CREATED,
        new_keys=({"run_id": "r2", "partition_id": 3},),
        still_failing_keys=(
            {"run_id": "r1", "partition_id": 1},
            {"run_id": "r1", "partition_id": 2},
        ),
        fixed_keys=({"run_id": "r0", "partition_id": 7},),
        samples=({"run_id": "r2", "partition_id": 3, "updated_at": "2024-05-01T09:00:00Z"},),
        reproduce_sql="SELECT run_id, partition_id FROM partition_progress WHERE NOT completed",
        runbook_url="https://runbooks.example/dq/stale_partitions",
        dashboard_url="https://grafana.example/d/dq?var-check=stale_partitions&from=now-6h",
    )
    return replace(base, **changes)


def keys(count: int, prefix: str) -> tuple[dict[str, Any], ...]:
    return tuple({"run_id": f"{prefix}{i}", "partition_id": i} for i in range(count))


def huge() -> Notification:
    return notification(
        violations=10_000,
        previous_violations=9_000,
        new_keys=keys(10_000, "new"),
        fixed_keys=keys(10_000, "old"),
        samples=tuple({"run_id": f"s{i}", "detail": "x" * 500} for i in range(20)),
        description="Long & <detailed> description. " * 1_000,
        reproduce_sql="SELECT a & b FROM t WHERE x < 1 AND y > 2;\n" * 1_000,
    )


def texts(block: dict[str, Any]) -> list[str]:
    """Every text string a block carries."""
    found = []
    if "text" in block:
        found.append(block["text"]["text"])
    found += [field["text"] for field in block.get("fields", [])]
    found += [element["text"] for element in block.get("elements", [])]
    return found


def blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The header (the message's own block), then the blocks of its one coloured attachment."""
    (attachment,) = payload["attachments"]
    return [*payload["blocks"], *attachment["blocks"]]


def assert_valid_slack(payload: dict[str, Any]) -> None:
    assert isinstance(payload["text"], str)
    assert payload["text"].strip()
    assert set(payload) == {"text", "blocks", "attachments"}
    assert [block["type"] for block in payload["blocks"]] == ["header"]
    (attachment,) = payload["attachments"]
    parsed_attachment = BlockAttachment(**attachment)
    parsed_attachment.validate_json()
    assert parsed_attachment.to_dict() == attachment
    assert re.fullmatch(r"#[0-9A-F]{6}", attachment["color"])
    every = blocks(payload)
    assert 1 <= len(every) <= 50
    for block in every:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
        assert parsed.to_dict() == block  # nothing was ignored as an unknown attribute
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert 1 <= len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
        for text in texts(block):
            assert not BARE_ENTITY.search(text), text
    json.dumps(payload)


def section_with(payload: dict[str, Any], heading: str) -> str:
    matches = [
        block["text"]["text"]
        for block in blocks(payload)
        if block["type"] == "section" and block["text"]["text"].startswith(heading)
    ]
    assert len(matches) == 1, heading
    return matches[0]


# Slack


@pytest.mark.parametrize("kind", list(Kind))
def test_slack_every_kind_renders_valid_blocks(kind: Kind) -> None:
    payload = slack_payload(notification(kind))
    assert_valid_slack(payload)
    assert blocks(payload)[0]["type"] == "header"
    assert payload["text"].startswith("[CRITICAL] stale_partitions")
    assert payload["text"].endswith(": 3 now, 2 before")


def test_slack_firing_lists_keys_samples_links_and_sql() -> None:
    payload = slack_payload(notification())
    assert_valid_slack(payload)
    summary = blocks(payload)[1]
    assert "Check *stale_partitions* is failing." in summary["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Violations now*\n3"} in summary["fields"]
    assert {"type": "mrkdwn", "text": "*Before*\n2"} in summary["fields"]
    assert "• run_id=r2 partition_id=3" in section_with(payload, "*New offending keys* (1)")
    assert "• run_id=r1 partition_id=2" in section_with(payload, "*Still failing* (2)")
    assert "• run_id=r0 partition_id=7" in section_with(payload, "*Fixed* (1)")
    assert "updated_at=2024-05-01T09:00:00Z" in section_with(payload, "*Sample rows* (1)")
    sql = section_with(payload, "*SQL to reproduce*")
    assert sql.endswith("WHERE NOT completed\n```")
    context = [block for block in blocks(payload) if block["type"] == "context"]
    assert context == [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "<https://runbooks.example/dq/stale_partitions|Runbook>",
                },
                {
                    "type": "mrkdwn",
                    "text": "<https://grafana.example/d/dq?var-check=stale_partitions"
                    "&amp;from=now-6h|Dashboard>",
                },
            ],
        }
    ]


def test_slack_resolved_lists_fixed_keys_without_sql() -> None:
    payload = slack_payload(notification(Kind.RESOLVED, violations=0, new_keys=(), samples=()))
    assert_valid_slack(payload)
    assert blocks(payload)[0]["text"]["text"] == "[CRITICAL] stale_partitions is resolved"
    assert "is resolved." in blocks(payload)[1]["text"]["text"]
    assert "• run_id=r0 partition_id=7" in section_with(payload, "*Fixed* (1)")
    assert "SQL" not in json.dumps(payload)
    assert "partition_progress" not in json.dumps(payload)


def test_slack_test_message_names_dq_monitor_and_route() -> None:
    payload = slack_payload(notification(Kind.TEST, new_keys=(), still_failing_keys=()))
    assert_valid_slack(payload)
    summary = blocks(payload)[1]["text"]["text"]
    assert summary.startswith("This is a test message from dq-monitor for route *oncall*.")


def test_slack_minimal_notification_has_header_and_summary_only() -> None:
    bare = notification(
        description="", new_keys=(), still_failing_keys=(), fixed_keys=(), samples=(),
        reproduce_sql="", runbook_url=None, dashboard_url=None,
    )  # fmt: skip
    payload = slack_payload(bare)
    assert_valid_slack(payload)
    assert [block["type"] for block in blocks(payload)] == ["header", "section"]


def test_slack_ten_thousand_violations_stay_within_limits() -> None:
    payload = slack_payload(huge())
    assert_valid_slack(payload)
    for heading in ("*New offending keys* (10000)", "*Fixed* (10000)", "*Sample rows* (20)"):
        text = section_with(payload, heading)
        shown = text.count("\n• ")
        assert shown >= 1
        total = int(heading.rsplit("(", 1)[1].rstrip(")"))
        assert text.endswith(f"\n+{total - shown} more")
    assert section_with(payload, "*Sample rows*").count("\n• ") == 5
    sql = section_with(payload, "*SQL to reproduce*")
    assert len(sql) <= 3000
    assert sql.endswith("…\n```")
    assert len(blocks(payload)[1]["text"]["text"]) <= 3000


def test_slack_list_section_cut_by_characters_keeps_exact_remainder() -> None:
    wide = tuple({"run_id": "&" * 250, "partition_id": i} for i in range(100))
    payload = slack_payload(notification(new_keys=wide))
    assert_valid_slack(payload)
    text = section_with(payload, "*New offending keys* (100)")
    shown = text.count("\n• ")
    assert 0 < shown < 20  # the 3000 characters ran out before the line cap
    assert text.endswith(f"\n+{100 - shown} more")


def test_slack_escapes_data_derived_text() -> None:
    payload = slack_payload(
        notification(
            check="a&b<c>",
            description="Tom & Jerry <!channel> <https://evil|x>",
            new_keys=({"run_id": "<@U123>", "partition_id": 1},),
            reproduce_sql="SELECT 1 WHERE a < b AND c > d AND e <> f",
        )
    )
    assert_valid_slack(payload)
    for block in blocks(payload):
        if block["type"] != "context":  # the only links are the ones built here
            for text in texts(block):
                assert "<" not in text
                assert ">" not in text
    dumped = json.dumps(payload)
    assert "<!channel>" not in dumped
    assert "<https://evil|x>" not in dumped
    assert "&lt;!channel&gt;" in dumped
    assert "&lt;https://evil|x&gt;" in dumped
    assert "run_id=&lt;@U123&gt;" in dumped
    assert "a&amp;b&lt;c&gt;" in blocks(payload)[0]["text"]["text"]
    assert "a&amp;b&lt;c&gt;" in payload["text"]
    assert "a &lt; b AND c &gt; d AND e &lt;&gt; f" in dumped
    assert "&amp;amp;" not in dumped


@pytest.mark.parametrize("offset", range(6))
def test_slack_cut_never_splits_an_entity(offset: int) -> None:
    # Entities of 5 and 4 characters at every alignment against the 3000-character cut.
    description = "x" * offset + "&<" * 2_000
    text = blocks(slack_payload(notification(description=description)))[1]["text"]["text"]
    assert len(text) <= 3000
    assert text.endswith("…")
    assert not BARE_ENTITY.search(text)
    assert "&amp;amp;" not in text
    assert re.search(r"(&amp;|&lt;)…$", text)


def test_slack_header_is_cut_to_150_with_ellipsis() -> None:
    payload = slack_payload(notification(check="c&" * 200))
    assert_valid_slack(payload)
    header = blocks(payload)[0]["text"]["text"]
    assert len(header) <= 150
    assert header.endswith("…")


@pytest.mark.parametrize(
    "url",
    ["https://x.example/a|<!channel>", "https://x.example/a>b", "https://x.example/" + "a" * 3000],
)
def test_slack_drops_links_it_cannot_build_safely(url: str) -> None:
    payload = slack_payload(notification(runbook_url=url))
    assert_valid_slack(payload)
    (context,) = [block for block in blocks(payload) if block["type"] == "context"]
    assert [element["text"].rsplit("|", 1)[1] for element in context["elements"]] == ["Dashboard>"]
    none = slack_payload(notification(runbook_url=url, dashboard_url="https://d.example/|x"))
    assert all(block["type"] != "context" for block in blocks(none))


# Console


def test_console_firing() -> None:
    text = console_text(notification())
    assert text.splitlines()[0] == "[CRITICAL] stale_partitions is failing (3 violations)"
    assert "run_id=r2 partition_id=3" in text
    assert "Violations: 3 now, 2 before" in text
    assert "Runbook: https://runbooks.example/dq/stale_partitions" in text
    assert "WHERE NOT completed" in text
    assert "more" not in text


def test_console_caps_lists_with_remainder() -> None:
    text = console_text(huge())
    assert "New offending keys (10000):" in text
    assert "  +9990 more" in text
    assert text.count("run_id=new") == 10
    assert "Sample rows (20):" in text
    assert "  +17 more" in text


def test_console_resolved_has_no_sql() -> None:
    text = console_text(notification(Kind.RESOLVED, violations=0))
    assert "is resolved" in text
    assert "Fixed (1):" in text
    assert "run_id=r0 partition_id=7" in text
    assert "SQL" not in text
    assert "partition_progress" not in text


def test_console_test_message_and_control_characters() -> None:
    text = console_text(notification(Kind.TEST, new_keys=({"run_id": "\x1b[2Jr9"},)))
    assert "test message from dq-monitor for route oncall" in text
    assert "\x1b" not in text
    assert "run_id=\ufffd[2Jr9" in text
