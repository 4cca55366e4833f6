"""The status page's gate and alert-delivery parts of one database."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from config import count, format_duration
from monitor.gate import PLANS, service_key
from monitor.service.metrics import DatabaseView
from monitor.service.page_text import ago, badge, span, when

# A published decision older than this many evaluation intervals is no longer known: the
# leader that evaluates it may be gone. Shown as unknown, never as open.
STALE_AFTER_INTERVALS = 3




def gate_section(view: DatabaseView, now: dt.datetime) -> str:
    """Each plan's latest published decision, its headline and how much of the clean period
    has passed (as of that evaluation, which is what the headline says too)."""
    rows = "".join(_plan_row(view, plan, now) for plan in PLANS)
    return (
        "<table><thead><tr><th>plan</th><th>gate</th><th>clean period</th><th>evaluated</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _plan_row(view: DatabaseView, plan: str, now: dt.datetime) -> str:
    state: dict[str, Any] = view.cache.snapshot.stats.service.get(service_key(plan)) or {}
    every = view.settings.gate.evaluate_interval
    required = float(state.get("required_seconds") or view.settings.gate.required_clean_period
                     .total_seconds())  # fmt: skip
    decision = state.get("decision")
    evaluated = _time(state.get("evaluated_at"))
    headline = str(state.get("headline") or "")
    if evaluated is None or decision not in ("open", "not_yet", "blocked"):
        gate = badge("unknown", "unknown")
        headline = f"not evaluated yet (the leader evaluates it every {format_duration(every)})"
        return _row(plan, gate, headline, _bar(None, required), "never")
    stale = now - evaluated > every * STALE_AFTER_INTERVALS
    if stale:
        gate = badge("unknown", "unknown")
        headline = f"last known: {headline or decision} (no evaluation since; is a leader up?)"
    elif decision == "open":
        gate = badge("ok", "open")
    elif decision == "not_yet":
        gate = badge("warning", "closed: not yet")
    else:
        gate = badge("critical", "closed: blocked")
    clean_since = _time(state.get("clean_since"))
    elapsed = None
    if not stale:
        # Blocked: the streak is broken whatever clean_since says (as dq_gate_clean_since).
        elapsed = 0.0
        if decision != "blocked" and clean_since is not None:
            elapsed = (evaluated - clean_since).total_seconds()
    return _row(
        plan, gate, headline or decision, _bar(elapsed, required),
        f"{when(evaluated)} <span class='muted'>({ago(evaluated, now)})</span>",
    )


def _row(plan: str, gate: str, headline: str, bar: str, evaluated: str) -> str:
    title = escape(PLANS[plan].title)
    return (
        f"<tr><td data-l='plan'><strong>{escape(plan)}</strong><br>"
        f"<span class='muted'>{title}</span></td>"
        f"<td data-l='gate'>{gate}<br>{escape(headline)}</td>"
        f"<td data-l='clean period'>{bar}</td><td data-l='evaluated'>{evaluated}</td></tr>"
    )


def _bar(elapsed: float | None, required: float) -> str:
    """A bar of `elapsed` out of `required` seconds and the same in words; None: unknown,
    drawn hatched and empty so it never reads as progress."""
    if elapsed is None:
        return (
            "<span class='bar unknown' role='img' aria-label='clean period unknown'></span>"
            f"unknown of {span(required)}"
        )
    shown = min(max(elapsed, 0.0), required)
    percent = int(shown / required * 100) if required > 0 else 100
    text = f"{span(shown)} of {span(required)} clean ({percent}%)"
    return (
        f"<span class='bar' role='progressbar' aria-valuemin='0' aria-valuemax='{required:.0f}' "
        f"aria-valuenow='{shown:.0f}' aria-label='{text}'><span style='width:{percent}%'>"
        f"</span></span>{text}"
    )


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def delivery_section(view: DatabaseView, several: bool = False) -> str:
    """The outbox now: messages waiting, and messages given up (dead), with what to do
    (`several`: the commands need --database, as more than one database is monitored)."""
    delivery = view.cache.snapshot.stats.delivery
    pending = count(delivery.outbox_pending, "message")
    line = f"<p>Pending: {pending} waiting to be delivered. "
    if not delivery.outbox_dead:
        return line + f"Dead: {badge('ok', 'none')}</p>"
    routes = [r for r in view.settings.alerts.routes if delivery.route(r.name).dead_total]
    by_route = ", ".join(
        f"{escape(r.name)} {delivery.route(r.name).dead_total:,}" for r in routes
    )
    dead = count(delivery.outbox_dead, "message")
    where = f" --database {escape(view.settings.database.name)}" if several else ""
    return line + (
        f"Dead: {badge('dead', dead)}</p>"
        f"<p class='notice alarm'>{dead} given up undelivered, not retried by themselves"
        f"{f' (by route, all time: {by_route})' if by_route else ''}. "
        f"<code>dq-monitor alerts outbox --dead{where}</code> lists them with the receiver's "
        "answer (a permanent error, or alerts.max_delivery_age passed). Fix the route and try "
        "it with <code>dq-monitor alerts test --route NAME</code>, then "
        f"<code>dq-monitor alerts retry --all-dead{where}</code> sends them again (except those "
        "a later message of the same alert has answered).</p>"
    )
