"""A Slack digest: one message listing every changed alert of a route in one delivery pass."""

from __future__ import annotations

from collections.abc import Sequence

from checks import JsonValue
from config import count

from .notification import Kind, Notification
from .slack import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    MAX_TEXT,
    RESOLVED_COLOUR,
    TEST_COLOUR,
    colour,
    cut,
    escape,
    header,
    message,
)

# The header is the message's own block, so the attachment holds MAX_BLOCKS - 1, one of
# which is kept for the "+N more" line.
MAX_LISTED = MAX_BLOCKS - 2
_MAX_DESCRIPTION = 300  # a digest is an overview; each alert's own message has the rest

_VERB = {Kind.FIRING: "failing", Kind.REMINDER: "still failing", Kind.RESOLVED: "resolved",
         Kind.TEST: "test"}  # fmt: skip


def digest_payload(messages: Sequence[Notification]) -> dict[str, JsonValue]:
    """One Slack body for `messages` (oldest first): a section per alert while they fit in
    Slack's 50 blocks, then `+N more`. Coloured by the worst alert still failing, green when
    all are resolved. Pure; raises nothing."""
    counts = {kind: sum(1 for n in messages if n.kind is kind) for kind in _VERB}
    summary = ", ".join(f"{n:,} {_VERB[kind]}" for kind, n in counts.items() if n)
    title = f"dq-monitor: {count(len(messages), 'alert')} changed"
    blocks: list[JsonValue] = [_entry(n) for n in messages[:MAX_LISTED]]
    if len(messages) > MAX_LISTED:
        rest = [n.check for n in messages[MAX_LISTED:]]
        more = cut(escape(f"+{len(rest)} more: {', '.join(rest)}"), MAX_SECTION_TEXT)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
    text = cut(escape(f"{title} ({summary})"), MAX_TEXT)
    return message(text, header(title), _worst(messages), blocks)


def _entry(n: Notification) -> JsonValue:
    lead = f"*{escape(n.title)}*  (route {escape(n.route)})"
    body = cut(escape(n.description), _MAX_DESCRIPTION) if n.description else ""
    text = cut(f"{lead}\n{body}" if body else lead, MAX_SECTION_TEXT)
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _worst(messages: Sequence[Notification]) -> str:
    failing = [n for n in messages if n.kind in (Kind.FIRING, Kind.REMINDER)]
    if failing:
        return colour(max(failing, key=lambda n: n.severity.rank))
    if any(n.kind is Kind.RESOLVED for n in messages):
        return RESOLVED_COLOUR
    return TEST_COLOUR
