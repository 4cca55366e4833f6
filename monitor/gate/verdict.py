"""The gate's verdict from recorded history: the clean streak per gating check, and blockers.

A streak begins at a clean full sweep and lasts while every run is clean, successful runs
are never further apart than the allowed gap, and clean full sweeps keep coming at least
daily. Any violation, error, gap or silence restarts it. The allowed gap after a run is
`gap_intervals` times the interval that run recorded (its schedule then), never today's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from config import EXIT_NOT_YET, EXIT_OK, EXIT_VIOLATIONS, format_duration, noun
from monitor.gate.plans import PLANS
from monitor.store import RunRecord


class Decision(StrEnum):
    OPEN = "open"
    NOT_YET = "not_yet"  # clean so far, but the period is not complete
    BLOCKED = "blocked"

    @property
    def exit_code(self) -> int:
        codes = {Decision.OPEN: EXIT_OK, Decision.BLOCKED: EXIT_VIOLATIONS}
        return codes.get(self, EXIT_NOT_YET)


@dataclass(frozen=True)
class Finding:
    """Something the gate saw: a blocker now, or an event that restarted the streak."""

    kind: str  # violation, error, gap, full_sweep, silence, writer, reader, dependency, unknown
    detail: str
    check: str | None = None
    at: dt.datetime | None = None
    runs: tuple[int, ...] = ()  # check runs
    sample_runs: tuple[str, ...] = ()  # job runs, from the samples
    count: int | None = None  # violations, or statements for a reader
    brief: str | None = None  # how the headline names it, when the detail is too long for it


@dataclass(frozen=True)
class Pending:
    """Evidence only the passage of time completes: what, since when, complete when."""

    kind: str  # streak, readers
    since: dt.datetime | None  # None: no streak yet (the next clean full sweep starts it)
    complete_at: dt.datetime


@dataclass
class Streak:
    """One gating check's clean streak."""

    check: str
    start: dt.datetime | None = None
    restarts: list[Finding] = field(default_factory=list)
    blockers: list[Finding] = field(default_factory=list)
    truncated: bool = False  # history before the horizon was not read: "at least"
    fallback_runs: int = 0  # successful runs without a recorded interval (judged by max_gap)
    intervals: set[dt.timedelta] = field(default_factory=set)  # recorded by successful runs


def analyse(  # noqa: PLR0912 - one branch per rule of the streak
    check: str,
    runs: list[RunRecord],
    *,
    now: dt.datetime,
    horizon: dt.datetime,
    max_gap: dt.timedelta,
    full_gap: dt.timedelta,
    gap_intervals: float = 3.0,
) -> Streak:
    """Walk a check's runs since `horizon` (oldest first) and find its current streak.

    After a run that recorded its interval, the next successful run must come within
    `gap_intervals` times that interval; after one that did not (rows older than the
    interval column), within `max_gap`.
    """
    streak = Streak(check)
    last_ok: RunRecord | None = None
    last_full: dt.datetime | None = None
    last: RunRecord | None = None
    for run in sorted(runs, key=lambda r: (r.finished_at, r.id)):
        if run.status in ("missed", "overlap"):
            continue
        last, t = run, run.finished_at
        if run.status in ("violation", "error"):
            streak.start = None
            streak.restarts.append(_bad_run(run))
            continue
        # The limit alone per run: the message is written only for a gap (a year of runs
        # a minute apart made formatting it half of an evaluation's time).
        if last_ok is not None and (gap := t - last_ok.finished_at) > _limit(
            last_ok, max_gap, gap_intervals
        ):
            _, why = _allowed(last_ok, max_gap, gap_intervals)
            streak.start = None
            streak.restarts.append(Finding(
                "gap", f"no successful run for {_d(gap)} (allowed {why})", check, t, (run.id,),
            ))  # fmt: skip
        last_ok = run
        if run.interval is None:
            streak.fallback_runs += 1
        else:
            streak.intervals.add(run.interval)
        if run.mode == "full":
            if streak.start is not None and last_full is not None and t - last_full > full_gap:
                streak.restarts.append(_no_full(check, t - last_full, full_gap, t, run.id))
            if streak.start is None or (last_full is not None and t - last_full > full_gap):
                streak.start = t
            last_full = t
        elif streak.start is not None and last_full is not None and t - last_full > full_gap:
            streak.start = None
            streak.restarts.append(_no_full(check, t - last_full, full_gap, t, run.id))
    if last is not None and last.status in ("violation", "error"):
        streak.blockers.append(_bad_run(last))
    allowed, why = _allowed(last_ok, max_gap, gap_intervals) if last_ok else (max_gap, "")
    if last_ok is None:
        streak.blockers.append(Finding("gap", "no successful run recorded", check))
    elif now - last_ok.finished_at > allowed:
        streak.blockers.append(Finding(
            "gap", f"no successful run for {_d(now - last_ok.finished_at)} (allowed {why})",
            check, last_ok.finished_at,
        ))  # fmt: skip
    elif last_full is not None and now - last_full > full_gap and streak.start is not None:
        streak.blockers.append(_no_full(check, now - last_full, full_gap, last_full, None))
    streak.truncated = streak.start is not None and streak.start - horizon < full_gap
    if streak.blockers:
        streak.start = None
    return streak


def _limit(run: RunRecord, max_gap: dt.timedelta, gap_intervals: float) -> dt.timedelta:
    """The longest wait after `run` for the next successful one (see _allowed)."""
    return max_gap if run.interval is None else run.interval * gap_intervals


def _allowed(
    run: RunRecord, max_gap: dt.timedelta, gap_intervals: float
) -> tuple[dt.timedelta, str]:
    """The longest wait after `run` for the next successful one, and how it was reckoned."""
    allowed = _limit(run, max_gap, gap_intervals)
    if run.interval is None:
        return allowed, _d(allowed)
    return allowed, f"{_d(allowed)}: {gap_intervals:g} x {_d(run.interval)} recorded"


def _bad_run(run: RunRecord) -> Finding:
    if run.status == "error":
        return Finding("error", f"the check failed: {run.error}", run.check, run.finished_at,
                       (run.id,))  # fmt: skip
    sample_runs = tuple(dict.fromkeys(str(s.get("run_id")) for s in run.samples if "run_id" in s))
    return Finding(
        "violation",
        _violations(run.violations),
        run.check,
        run.finished_at,
        (run.id,),
        sample_runs[:10],
        count=run.violations,
    )


def _violations(n: int | None) -> str:
    return "violations (how many was not recorded)" if n is None else plural(n, "violation")


def plural(n: int, word: str) -> str:
    """`n` and `word` agreeing with it (config.noun). Unlike config.count, no thousands
    separator: these texts are also values of the JSON report and of its evidence hash, which
    stay as they were."""
    return f"{n} {noun(n, word)}"


def _no_full(
    check: str, gap: dt.timedelta, allowed: dt.timedelta, at: dt.datetime, run: int | None
) -> Finding:
    return Finding(
        "full_sweep",
        f"no clean full sweep for {_d(gap)} (at least one per {_d(allowed)})",
        check,
        at,
        (run,) if run is not None else (),
    )


def _d(value: dt.timedelta) -> str:
    return format_duration(dt.timedelta(seconds=round(value.total_seconds())))


@dataclass
class GateReport:
    """The gate's decision for one plan and every piece of evidence behind it."""

    plan: str
    now: dt.datetime
    required: dt.timedelta
    decision: Decision
    clean_since: dt.datetime | None
    streaks: list[Streak]
    blockers: list[Finding]
    evidence: dict[str, dict[str, Any]]
    silences: list[str]
    # The rules it was evaluated with (gate_rules.ResolvedRules.as_json) and, when weaker
    # than the defaults or the service's, the warning every report starts with.
    settings: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None
    pending: list[Pending] = field(default_factory=list)  # what holds a NOT_YET

    @property
    def clean_seconds(self) -> float:
        return 0.0 if self.clean_since is None else (self.now - self.clean_since).total_seconds()

    @property
    def complete_at(self) -> dt.datetime | None:
        """When the gate opens if nothing changes (NOT_YET only)."""
        if self.decision is not Decision.NOT_YET or not self.pending:
            return None
        return max(p.complete_at for p in self.pending)

    @property
    def remaining(self) -> dt.timedelta:
        left = self.required.total_seconds() - self.clean_seconds
        if self.complete_at is not None:
            left = max(left, (self.complete_at - self.now).total_seconds())
        return dt.timedelta(seconds=max(0.0, round(left)))

    def held_by(self) -> list[str]:
        """What holds the gate, each named as the headline names it."""
        if self.decision is Decision.BLOCKED:
            return [_named(b) for b in self.blockers] or ["an unnamed blocker"]
        if self.decision is Decision.NOT_YET:
            return [self._waiting(p) for p in self.pending]
        return []

    def headline(self) -> str:
        """`OPEN: ...`, `NOT YET: clean for 2h of 7d; ..., complete ...`, `BLOCKED by: ...`."""
        held = "; ".join(self.held_by())
        if self.decision is Decision.BLOCKED:
            return f"BLOCKED by: {_per_check(self.blockers) or held}"
        if self.decision is Decision.NOT_YET:
            earliest = " at the earliest" if any(p.since is None for p in self.pending) else ""
            return f"NOT YET: {held}, complete {_when(self.complete_at)}{earliest}"
        return f"OPEN: {PLANS[self.plan].goal}"

    def _waiting(self, p: Pending) -> str:
        if p.kind == "streak" and p.since is None:
            return "no clean streak yet (the next clean full sweep starts it)"
        if p.kind == "streak" and p.since is not None:
            return f"clean for {_d(self.now - p.since)} of {format_duration(self.required)}"
        since = "?" if p.since is None else _short(p.since, self.now)
        return f"{'reader coverage' if p.kind == 'readers' else p.kind} since {since}"

    def as_json(self) -> dict[str, Any]:
        first = {"warning": self.warning} if self.warning else {}
        return first | {
            "plan": self.plan,
            "decision": self.decision.value,
            "exit_code": self.decision.exit_code,
            "evaluated_at": self.now.isoformat(),
            "required_clean_period": format_duration(self.required),
            "clean_since": self.clean_since.isoformat() if self.clean_since else None,
            "clean_seconds": round(self.clean_seconds),
            "remaining": format_duration(self.remaining),
            "headline": self.headline(),
            "held_by": self.held_by(),
            "complete_at": self.complete_at.isoformat() if self.complete_at else None,
            "pending": [_pending_json(p) for p in self.pending],
            "blockers": [_finding_json(f) for f in self.blockers],
            "checks": [
                {
                    "check": s.check,
                    "clean_since": s.start.isoformat() if s.start else None,
                    "at_least": s.truncated,
                    "intervals": [_d(i) for i in sorted(s.intervals)],
                    "restarted_by": [_finding_json(f) for f in s.restarts[-3:]],
                }
                for s in self.streaks
            ],
            "evidence": self.evidence,
            "silences": self.silences,
            "settings": self.settings,
        }

    def evidence_hash(self) -> str:
        """sha256 of the evidence and the settings it was judged by (not the evaluation time),
        for the migration's audit row."""
        body = self.as_json()
        body.pop("evaluated_at")
        body.pop("clean_seconds")
        body.pop("remaining")
        for derived in ("headline", "held_by", "complete_at", "pending"):  # from the above
            body.pop(derived)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _pending_json(p: Pending) -> dict[str, Any]:
    since = p.since.isoformat() if p.since else None
    return {"kind": p.kind, "since": since, "complete_at": p.complete_at.isoformat()}


def _finding_json(f: Finding) -> dict[str, Any]:
    data = asdict(f)
    data["at"] = f.at.isoformat() if f.at else None
    data["runs"] = list(f.runs)
    data["sample_runs"] = list(f.sample_runs)
    return data


def decide(
    now: dt.datetime, required: dt.timedelta, clean_since: dt.datetime | None,
    blockers: list[Finding], waiting: list[Pending],
) -> tuple[Decision, dt.datetime | None, list[Pending]]:  # fmt: skip
    """The decision, the clean streak it keeps, and what holds a NOT_YET.

    Any blocker blocks. Open needs a streak of the whole period and nothing `waiting` (evidence
    only time completes); otherwise it is not yet, and the pending list says until when.
    """
    if blockers:
        return Decision.BLOCKED, None, []
    pending = list(waiting)
    if clean_since is None:
        pending.insert(0, Pending("streak", None, now + required))
    elif now - clean_since < required:
        pending.insert(0, Pending("streak", clean_since, clean_since + required))
    return (Decision.NOT_YET if pending else Decision.OPEN), clean_since, pending


def _named(f: Finding) -> str:
    """A blocker as the headline names it: what, which check, how many of which runs."""
    if f.brief:
        return f.brief
    n = f.count
    if f.kind == "violation" and f.check == "counter_writes":
        jobs = "job runs" if n is None else plural(n, "job run")
        return f"writers: counter_writes saw changed counters in {jobs}" + (
            f" ({_runs(f.sample_runs, n)})" if f.sample_runs else ""
        )
    if f.kind == "violation":
        where = (f"in {_job_runs(f.sample_runs, n)}" if f.sample_runs
                 else f"in check run {', '.join(str(r) for r in f.runs)}")  # fmt: skip
        return f"{f.check} ({_violations(n)} {where})"
    if f.kind == "error" and f.runs:
        failed = f.detail.removeprefix("the check failed: ")
        return f"{f.check} (check run {f.runs[0]} failed: {failed})"
    names = {"dependency": "dependencies", "reader": "readers", "settings": "settings"}
    if f.kind in names:
        return f"{names[f.kind]}: {f.detail}"
    return f"{f.check} ({f.detail})" if f.check else f.detail


def _per_check(blockers: list[Finding]) -> str:
    """The blockers with one entry per check, in order: `x (1 violation in job run r2; no
    successful run recorded)` rather than naming x twice. Empty when there are none."""
    entries: list[tuple[str | None, list[str]]] = []
    by_check: dict[str, list[str]] = {}
    for f in blockers:
        named, check = _named(f), f.check or ""
        if not (check and named.startswith(f"{check} (") and named.endswith(")")):
            entries.append((None, [named]))  # not about one check: readers, settings, ...
        elif check in by_check:
            by_check[check].append(named[len(check) + 2 : -1])
        else:
            by_check[check] = [named[len(check) + 2 : -1]]
            entries.append((check, by_check[check]))
    return "; ".join(
        f"{check} ({'; '.join(details)})" if check else details[0] for check, details in entries
    )


def _job_runs(runs: tuple[str, ...], count: int | None) -> str:
    """`job run r1` for exactly one, `job runs r1, r2 ...` otherwise."""
    listed = _runs(runs, count)
    return f"{noun(1 if listed == runs[0] else 2, 'job run')} {listed}"


def _runs(runs: tuple[str, ...], count: int | None) -> str:
    """The first job runs, and `...` when there may be more."""
    more = " ..." if len(runs) > 3 or count is None or count > len(runs) else ""
    return ", ".join(runs[:3]) + more


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _short(value: dt.datetime, now: dt.datetime) -> str:
    """08:11 on the day of `now`, the whole date and time otherwise."""
    value, today = value.astimezone(dt.UTC), now.astimezone(dt.UTC)
    return f"{value:%H:%M}" if value.date() == today.date() else _when(value)
