"""Render a plan's gate report: text for a terminal, JSON for tools, Markdown for a ticket."""

from __future__ import annotations

import datetime as dt
import json

from config import count, format_duration, noun
from monitor.gate.plans import PLANS
from monitor.gate.verdict import Finding, GateReport, Pending


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _d(seconds: float) -> str:
    return format_duration(dt.timedelta(seconds=round(seconds)))


def _finding(f: Finding) -> str:
    parts = [f.kind]
    if f.check:
        parts.append(f.check)
    line = f"{' / '.join(parts)}: {f.detail}"
    if f.at:
        line += f" (at {_when(f.at)})"
    if f.runs:
        line += f"; {_check_runs(f)}"
    return line + _job_runs(f)


def _check_runs(f: Finding) -> str:
    return f"{noun(len(f.runs), 'check run')} {', '.join(str(r) for r in f.runs)}"


def _job_runs(f: Finding) -> str:
    """`; job run r9` (or runs), when the finding names job runs; else empty."""
    if not f.sample_runs:
        return ""
    return f"; {noun(len(f.sample_runs), 'job run')} {', '.join(f.sample_runs)}"


# How a restart's kind reads after "by": one of them, several of them.
_BY = {
    "violation": ("violations", "violations"),
    "error": ("an error", "errors"),
    "gap": ("a gap", "gaps"),
    "full_sweep": ("a missing full sweep", "missing full sweeps"),
    "silence": ("a silence", "silences"),
}


def _restarts(restarts: list[Finding]) -> str:
    """Every restart of a check's clean period in one line: how often, by what, the last one.

    `restarted 3 times in the window (2 by violations, 1 by a gap), last by a gap: ...`
    """
    if not restarts:
        return "not restarted in the window"
    kinds: dict[str, int] = {}
    for f in restarts:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    n = len(restarts)
    line = f"restarted {'once' if n == 1 else count(n, 'time')} in the window"
    if len(kinds) > 1:
        line += " (" + ", ".join(f"{k} by {_by(kind, k)}" for kind, k in kinds.items()) + ")"
    return f"{line}, {'by' if n == 1 else 'last by'} {_last(restarts[-1])}"


def _by(kind: str, n: int) -> str:
    one, several = _BY.get(kind, (kind, kind))
    return one if n == 1 else several


def _last(f: Finding) -> str:
    what = f.detail if f.kind == "violation" else f"{_by(f.kind, 1)}: {f.detail}"
    if f.at:
        what += f" at {_when(f.at)}"
    if f.runs:
        what += f" ({_check_runs(f)})"
    return what + _job_runs(f)


def _pending(p: Pending) -> str:
    what = {"streak": "clean streak", "readers": "reader coverage"}.get(p.kind, p.kind)
    since = f"since {_when(p.since)}" if p.since else "not begun (the next clean full sweep)"
    earliest = " at the earliest" if p.since is None else ""
    return f"{what}: {since}, complete {_when(p.complete_at)}{earliest}"


def _streak(report: GateReport) -> str:
    if report.clean_since is None:
        return "no clean streak now"
    prefix = "at least " if any(s.truncated for s in report.streaks) else ""
    return f"{prefix}{_d(report.clean_seconds)} clean (since {_when(report.clean_since)})"


def _rules(report: GateReport) -> str:
    s = report.settings
    if not s:
        return "-"
    unknown = "blocks" if s["unknown_blocks"] else "does not block"
    return (f"a gap of at most {s['max_gap_intervals']} x each run's recorded interval; a clean "
            f"full sweep at least every {s['full_sweep_max_gap']}; unknown evidence {unknown}; "
            f"gating checks {', '.join(s['checks'])}")  # fmt: skip


def render_text(report: GateReport) -> str:
    lines = [f"{report.warning}"] if report.warning else []
    lines += [
        f"gate: {report.headline()}",
        f"plan: {report.plan} ({PLANS[report.plan].title})",
        f"required clean period: {format_duration(report.required)}; {_streak(report)}; "
        f"remaining: {format_duration(report.remaining)}",
        f"rules: {_rules(report)}",
    ]
    lines += [f"  note: {note}" for note in report.settings.get("notes", ())]
    if report.blockers:
        lines.append("blockers:")
        lines += [f"  - {_finding(b)}" for b in report.blockers]
    if report.pending:
        lines.append("waiting for time (complete if nothing changes):")
        lines += [f"  - {_pending(p)}" for p in report.pending]
    lines.append("checks:")
    for s in report.streaks:
        since = f"clean since {_when(s.start)}" if s.start else "not clean now"
        lines.append(f"  {s.check}: {since}")
        if s.restarts:
            lines.append(f"      {_restarts(s.restarts)}")
    lines.append("evidence:")
    for name, item in report.evidence.items():
        lines.append(f"  {name}: {item['status']} ({item['reason']})")
        if item.get("undetectable"):
            lines.append(f"    undetectable: {item['undetectable']}")
    lines.append("silences in the window: " + ("; ".join(report.silences) or "none"))
    lines.append(f"evidence hash: {report.evidence_hash()}")
    return "\n".join(lines)


def render_json(report: GateReport) -> str:
    body = report.as_json()
    body["evidence_hash"] = report.evidence_hash()
    return json.dumps(body, indent=2)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: GateReport) -> str:
    """A section ready to paste into a change ticket."""
    lines = [f"> **{_md(report.warning)}**", ""] if report.warning else []
    lines += [
        f"## dq-monitor gate: {PLANS[report.plan].title}",
        "",
        f"**Decision: {_md(report.headline())}** (exit code {report.decision.exit_code})",
        "",
        f"- Plan: `{report.plan}`",
        f"- Evaluated: {_when(report.now)}",
        f"- Required clean period: {format_duration(report.required)}",
        f"- Clean streak: {_streak(report)}",
        f"- Remaining: {format_duration(report.remaining)}",
        f"- Evidence hash: `{report.evidence_hash()}`",
        "",
        "### Gating checks",
        "",
        "| check | clean since | restarts |",
        "|---|---|---|",
    ]
    for s in report.streaks:
        lines.append(f"| `{s.check}` | {_when(s.start)} | {_md(_restarts(s.restarts))} |")
    lines += _md_settings(report)
    about = "the deprecated columns" if "columns" in PLANS[report.plan].evidence else "the table"
    lines += ["", f"### Evidence about {about}", "",
              "| source | status | details |", "|---|---|---|"]  # fmt: skip
    for name, item in report.evidence.items():
        lines.append(f"| {name} | **{item['status']}** | {_md(str(item['reason']))} |")
    lines += ["", "### Blockers", ""]
    lines += [f"- {_md(_finding(b))}" for b in report.blockers] or ["- none"]
    lines += ["", "### Waiting for time", ""]
    lines += [f"- {_md(_pending(p))}" for p in report.pending] or ["- nothing"]
    lines += ["", "### Silences in the window", ""]
    lines += [f"- {_md(s)}" for s in report.silences] or ["- none"]
    return "\n".join(lines) + "\n"


def _md_settings(report: GateReport) -> list[str]:
    s = report.settings
    if not s:
        return []
    lines = [
        "", "### Settings the gate was evaluated with", "", "| setting | value |", "|---|---|",
        f"| required clean period | {s['required_clean_period']} |",
        f"| max gap between successful runs | {s['max_gap_intervals']} "
        f"{noun(s['max_gap_intervals'], 'interval')} |",
        f"| clean full sweep at least every | {s['full_sweep_max_gap']} |",
        f"| unknown evidence blocks | {'yes' if s['unknown_blocks'] else 'no'} |",
        f"| gating checks | {', '.join(f'`{c}`' for c in s['checks'])} |",
        f"| weaker settings accepted | {'yes' if s['accept_weaker_settings'] else 'no'} |",
    ]  # fmt: skip
    notes = [f"- {_md(n)}" for n in s.get("notes", ())]
    return lines + (["", *notes] if notes else [])


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
