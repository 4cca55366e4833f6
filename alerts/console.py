"""Plain-text rendering of one notification for a terminal."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

from checks import JsonValue

from .notification import Kind, Notification

MAX_KEYS = 10  # per list; a terminal alert is a summary, the state store has the rest
MAX_SAMPLES = 3
MAX_LINE = 200  # one huge key must not flood the terminal
ELLIPSIS = "…"

# Data comes from monitored tables: C0/C1 control characters (ANSI escapes, carriage returns)
# could rewrite the operator's terminal, so they are shown as U+FFFD. Newlines stay.
_CONTROLS = {c: "\ufffd" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != ord("\n")}


def key_text(key: Mapping[str, JsonValue]) -> str:
    """One key or sample row on one line as `column=value` pairs: `run_id=r2 partition_id=3`."""
    text = " ".join(f"{column}={_scalar(value)}" for column, value in key.items())
    return text.replace("\n", " ")  # a newline in a value would break a bulleted list


def when_text(moment: dt.datetime) -> str:
    """A timestamp for people: UTC to the second."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def console_text(n: Notification) -> str:
    """Render a notification as readable multi-line text; pure, raises nothing."""
    lines = [n.title, "=" * min(len(n.title), 80)]
    if n.kind is Kind.TEST:
        lines.append(f"This is a test message from dq-monitor for route {n.route}.")
    if n.description:
        lines.append(n.description)
    lines.append(
        f"Violations: {n.violations} now, {n.previous_violations} before"
        f" (active since {when_text(n.active_since)})"
    )
    lines += _listing("New offending keys", n.new_keys, MAX_KEYS)
    lines += _listing("Still failing", n.still_failing_keys, MAX_KEYS)
    lines += _listing("Fixed", n.fixed_keys, MAX_KEYS)
    if n.kind is not Kind.RESOLVED:
        lines += _listing("Sample rows", n.samples, MAX_SAMPLES)
    if n.runbook_url:
        lines.append(f"Runbook: {n.runbook_url}")
    if n.dashboard_url:
        lines.append(f"Dashboard: {n.dashboard_url}")
    if n.kind in (Kind.FIRING, Kind.REMINDER) and n.reproduce_sql.strip():
        lines.append("SQL to reproduce:")
        lines += [f"    {line}" for line in n.reproduce_sql.strip().splitlines()]
    return "\n".join(lines).translate(_CONTROLS) + "\n"


def _listing(heading: str, rows: Sequence[Mapping[str, JsonValue]], cap: int) -> list[str]:
    if not rows:
        return []
    lines = [f"{heading} ({len(rows)}):"]
    lines += [f"  - {_clip(key_text(row))}" for row in rows[:cap]]
    if len(rows) > cap:
        lines.append(f"  +{len(rows) - cap} more")
    return lines


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + ELLIPSIS


def _scalar(value: JsonValue) -> str:
    # Strings as they are (no quotes around run ids); everything else in its JSON form.
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
