"""Slack incoming-webhook body for one notification: Block Kit blocks plus a text fallback."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from checks import JsonValue
from config import Severity

from .console import key_text, when_text
from .notification import Kind, Notification

# Slack's limits (Block Kit reference); every text is measured after escaping.
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_CONTEXT_ELEMENTS = 10
# Readability, not Slack: a channel message is a summary; the state store keeps every key.
MAX_KEY_LINES = 20
MAX_SAMPLES = 5
MAX_LINE = 300  # one huge key must not crowd the rest of its list out of the section
MAX_TEXT = 3000  # the notification fallback; Slack truncates far later, phones much sooner
MAX_URL = 2000
ELLIPSIS = "…"
# Between two backticks, so a run of them inside a code block can never close it early.
_ZERO_WIDTH_SPACE = "\u200b"
_BACKTICK_PAIR = re.compile(r"`(?=`)")

#: The colour bar of the attachment that wraps a message's blocks (Slack's own palette).
SEVERITY_COLOURS = {Severity.CRITICAL: "#E01E5A", Severity.WARNING: "#ECB22E",
                    Severity.INFO: "#36C5F0"}  # fmt: skip
RESOLVED_COLOUR = "#2EB67D"
TEST_COLOUR = "#868686"

Block = dict[str, JsonValue]


def slack_payload(n: Notification) -> dict[str, JsonValue]:
    """Build the webhook body; all data-derived text is escaped and cut to Slack's limits.

    The header is the message's own block; the rest sits in one attachment whose colour bar
    shows the severity (incoming webhooks colour only attachments). `text` is the
    notification fallback. Pure; raises nothing.
    """
    blocks: list[JsonValue] = [_summary(n), *_key_sections(n)]
    if n.kind is not Kind.RESOLVED and n.samples:
        lines = [key_text(sample) for sample in n.samples[:MAX_SAMPLES]]
        blocks.append(_list_section("Sample rows", lines, len(n.samples)))
    links = _links(n)
    if links is not None:
        blocks.append(links)
    if n.kind in (Kind.FIRING, Kind.REMINDER) and n.reproduce_sql.strip():
        blocks.append(_sql_section(n.reproduce_sql))
    return message(_fallback(n), _header(n), colour(n), blocks)


def message(text: str, header: Block, bar: str, blocks: list[JsonValue]) -> dict[str, JsonValue]:
    """The body: `text`, the header block, then `blocks` in an attachment coloured `bar`;
    at most MAX_BLOCKS blocks in all."""
    attachment: dict[str, JsonValue] = {"color": bar, "blocks": blocks[: MAX_BLOCKS - 1]}
    return {"text": text, "blocks": [header], "attachments": [attachment]}


def colour(n: Notification) -> str:
    """Red, yellow or blue by severity while failing; green once resolved; grey for a test."""
    if n.kind is Kind.TEST:
        return TEST_COLOUR
    return RESOLVED_COLOUR if n.kind is Kind.RESOLVED else SEVERITY_COLOURS[n.severity]


def answer_problem(content_type: str, body: str) -> tuple[str, bool] | None:
    """Why a 2xx answer from Slack is still a failure, and whether it is worth retrying;
    None when it is a success.

    As Alertmanager's notify/slack/slack.go (v0.34.0) decides: an incoming webhook answers
    the plain text `ok`, anything else in plain text is an error that a retry will not fix
    (e.g. `invalid_blocks`); a JSON answer succeeds when its `ok` is true, a false one is
    permanent, and a JSON answer that does not parse may be a broken proxy, so it is retried.
    """
    if not content_type.startswith("application/json"):
        return None if body.strip() == "ok" else (f"Slack answered {body.strip()!r}", False)
    try:
        data = json.loads(body)
    except ValueError:
        return "Slack's JSON answer does not parse", True
    if isinstance(data, dict) and data.get("ok") is True:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return f"Slack answered an error: {error or body.strip()}", False


def escape(text: str) -> str:
    """mrkdwn escaping: `&` first, so the entities made next are not escaped twice."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(escaped: str, limit: int) -> str:
    """Shorten escaped text to at most `limit` characters ending in an ellipsis.

    Every `&` in escaped text starts an entity, so an `&` without its `;` in the kept part
    means the cut fell inside one: drop the partial entity rather than send `&am`.
    """
    if len(escaped) <= limit:
        return escaped
    head = escaped[: limit - len(ELLIPSIS)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + ELLIPSIS


def _fallback(n: Notification) -> str:
    counts = f"{n.violations} now, {n.previous_violations} before"
    return cut(f"{escape(n.title)}: {counts}", MAX_TEXT)


def _header(n: Notification) -> Block:
    return header(n.title)


def header(title: str) -> Block:
    """A header block; Slack decodes entities in plain_text too, so it is escaped as well."""
    text: JsonValue = {"type": "plain_text", "text": cut(escape(title), MAX_HEADER)}
    return {"type": "header", "text": text}


def _summary(n: Notification) -> Block:
    check, route = escape(n.check), escape(n.route)
    lead = {
        Kind.FIRING: f"Check *{check}* is failing.",
        Kind.REMINDER: f"Check *{check}* is still failing.",
        Kind.RESOLVED: f"Check *{check}* is resolved.",
        Kind.TEST: f"This is a test message from dq-monitor for route *{route}*.",
    }[n.kind]
    text = f"{lead}\n{escape(n.description)}" if n.description else lead
    fields = [
        ("Violations now", str(n.violations)),
        ("Before", str(n.previous_violations)),
        ("Severity", n.severity.value),
        ("Route", n.route),
        ("Active since", when_text(n.active_since)),
    ]
    block = _section(cut(text, MAX_SECTION_TEXT))
    rendered: list[JsonValue] = [
        _mrkdwn(cut(f"*{label}*\n{escape(value)}", MAX_FIELD)) for label, value in fields
    ]
    block["fields"] = rendered[:MAX_FIELDS]
    return block


def _key_sections(n: Notification) -> list[JsonValue]:
    lists = (
        ("New offending keys", n.new_keys),
        ("Still failing", n.still_failing_keys),
        ("Fixed", n.fixed_keys),
    )
    return [_list_section(heading, _lines(keys), len(keys)) for heading, keys in lists if keys]


def _lines(keys: Sequence[Mapping[str, JsonValue]]) -> list[str]:
    # Only the keys that can be shown are rendered: a check may report 10,000 of them.
    return [key_text(key) for key in keys[:MAX_KEY_LINES]]


def _list_section(heading: str, lines: Sequence[str], total: int) -> Block:
    """Bullets under a heading, as many as fit, then `+N more` with the exact remainder."""
    text = f"*{heading}* ({total})"
    # Room for the widest remainder line is kept from the start, so it always fits.
    reserve = len(f"\n{_more(total)}")
    shown = 0
    for line in lines:
        item = f"\n• {cut(escape(line), MAX_LINE)}"
        if len(text) + len(item) + reserve > MAX_SECTION_TEXT:
            break
        text += item
        shown += 1
    if shown < total:
        text += f"\n{_more(total - shown)}"
    return _section(text)


def _more(count: int) -> str:
    return f"+{count} more"


def _links(n: Notification) -> Block | None:
    pairs = (("Runbook", n.runbook_url), ("Dashboard", n.dashboard_url))
    elements: list[JsonValue] = [
        _mrkdwn(f"<{escape(url)}|{escape(label)}>")
        for label, url in pairs
        if url and _linkable(url)
    ]
    if not elements:
        return None
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def _linkable(url: str) -> bool:
    # `|` and `>` end the URL part of <url|label>: such a URL could smuggle in its own label
    # or mention, so the link is dropped rather than half-rendered.
    return len(url) <= MAX_URL and not any(char in url for char in "|<> \n")


def _sql_section(sql: str) -> Block:
    return _section(code_block("*SQL to reproduce*\n", sql, MAX_SECTION_TEXT))


def code_block(heading: str, code: str, limit: int) -> str:
    """`heading` then `code` in a ``` block, at most `limit` characters in all. mrkdwn has no
    escape for a backtick, so no two are left adjacent: hostile text cannot end the block."""
    opening, closing = f"{heading}```\n", "\n```"
    safe = _BACKTICK_PAIR.sub("`" + _ZERO_WIDTH_SPACE, escape(code.strip()))
    return f"{opening}{cut(safe, limit - len(opening) - len(closing))}{closing}"


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}
