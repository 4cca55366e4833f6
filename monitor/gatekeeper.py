"""Evaluate the column-removal gate: history from the state store, evidence from the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from checks import Check, all_checks
from config import format_duration

from . import evidence
from .app import App
from .gate import Decision, Finding, GateReport, RunRecord, Streak, analyse
from .gate_rules import GateRules, ResolvedRules, resolve
from .migration_plan import GATING_CHECKS
from .silences import Silence, Silences


def typical_interval(check: Check, now: dt.datetime) -> dt.timedelta:
    """The check's schedule interval; for a cron schedule, the gap between two firings."""
    return check.settings.typical_interval(now)


class Gatekeeper:
    """Decides whether migration 005 may run, and says why.

    The rules are the configured ones, but never below their floors: the plan's gating
    checks, the defaults, and (unless this is the service) the rules the service last
    recorded; weaker ones apply only with gate.accept_weaker_settings (see gate_rules).
    """

    def __init__(
        self, app: App, plan_checks: Sequence[str] = GATING_CHECKS, *, as_service: bool = False
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.plan_checks = tuple(plan_checks)
        self.as_service = as_service
        self.by_name = {c.name: c for c in all_checks(app.settings)}
        # Replaced by the resolved rules when evaluate() runs.
        self.gate = app.settings.gate
        self.checks = [self.by_name[name] for name in self.gate.checks]

    def evaluate(self, now: dt.datetime | None = None) -> GateReport:
        """Raises DatabaseUnavailable, SetupError (a table, column or grant is missing),
        StoreError/StoreUnavailable or GateError."""
        now = now or self.app.clock.now()
        resolved = self._resolve()
        self.gate = self.settings.gate.model_copy(update=resolved.rules.settings_update())
        self.checks = [self.by_name[n] for n in resolved.rules.checks if n in self.by_name]
        window_start = now - self.gate.required_clean_period
        history, streaks = self._streaks(now, window_start)
        blockers = [b for s in streaks for b in s.blockers]
        blockers += [
            Finding("settings", f"the service also gates on {name}, which this configuration "
                    "does not define; evaluate with the service's configuration", name)
            for name in resolved.unrecorded
        ]  # fmt: skip
        silences = Silences(self.app.store, self.settings).between(window_start, now)
        clean_since = self._after_silences(silences, now, _clean_since(streaks), blockers)
        found = self._evidence(now, window_start, history)
        for name, item in found.items():
            if item["status"] == "found" and name in ("dependencies", "readers"):
                kind = "dependency" if name == "dependencies" else "reader"
                blockers.append(Finding(kind, item["reason"]))
            if item["status"] == "unknown" and self.gate.unknown_blocks:
                blockers.append(Finding("unknown", f"{name}: {item['reason']}"))
        if blockers:
            decision, clean_since = Decision.BLOCKED, None
        elif clean_since is not None and now - clean_since >= self.gate.required_clean_period:
            decision = Decision.OPEN
        else:
            decision = Decision.NOT_YET
        return GateReport(
            now=now, required=self.gate.required_clean_period, decision=decision,
            clean_since=clean_since, streaks=streaks, blockers=blockers, evidence=found,
            silences=[s.describe(now) for s in silences],
            settings=resolved.as_json(self._interval_notes(streaks, now)),
            warning=resolved.warning,
        )  # fmt: skip

    def _after_silences(
        self, silences: list[Silence], now: dt.datetime, clean_since: dt.datetime | None,
        blockers: list[Finding],
    ) -> dt.datetime | None:  # fmt: skip
        """A gating check's silence blocks while active, and restarts the streak when over."""
        for silence in (s for s in silences if s.check in self.gate.checks):
            ended = silence.removed_at or silence.ends_at
            if ended > now:
                why = f"silenced by {silence.created_by}: {silence.reason}"
                blockers.append(Finding("silence", why, silence.check, silence.starts_at))
            elif clean_since is not None and ended > clean_since:
                clean_since = ended
        return clean_since

    def _resolve(self) -> ResolvedRules:
        service = None
        if not self.as_service:
            recorded = self.app.store.service_state("gate") or {}
            service = GateRules.from_json(recorded.get("settings"))
        return resolve(self.settings.gate, self.plan_checks, service, list(self.by_name))

    def _streaks(
        self, now: dt.datetime, window_start: dt.datetime
    ) -> tuple[dict[str, list[RunRecord]], list[Streak]]:
        """Each gating check's streak; gaps judged by the intervals the runs recorded."""
        k = self.gate.max_gap_intervals
        # Today's interval only for runs that recorded none (and to bound the history read).
        gaps = {c.name: typical_interval(c, now) * k for c in self.checks}
        horizon = window_start - self.gate.full_sweep_max_gap - max(gaps.values())
        history = self._history(horizon)
        streaks = [
            analyse(c.name, history.get(c.name, []), now=now, horizon=horizon,
                    max_gap=gaps[c.name], full_gap=self.gate.full_sweep_max_gap, gap_intervals=k)
            for c in self.checks
        ]  # fmt: skip
        return history, streaks

    def _interval_notes(self, streaks: list[Streak], now: dt.datetime) -> list[str]:
        notes = []
        for s in streaks:
            if s.fallback_runs:
                today = format_duration(typical_interval(self.by_name[s.check], now))
                notes.append(
                    f"{s.check}: {s.fallback_runs} run(s) without a recorded interval (written "
                    f"before dq-monitor kept it) were judged by today's interval {today}"
                )
        return notes

    def _history(self, horizon: dt.datetime) -> dict[str, list[RunRecord]]:
        with self.app.store.session("reading the gate's history") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, check_name, finished_at, mode, status, violations, samples, error,"
                    " interval_seconds FROM {} WHERE check_name = ANY(%s) AND finished_at >= %s"
                    " ORDER BY id"
                ).format(sql.Identifier(self.app.store.schema, "check_runs")),
                (list(self.gate.checks), horizon),
            ).fetchall()
        history: dict[str, list[RunRecord]] = {}
        for r in rows:
            interval = dt.timedelta(seconds=r[8]) if r[8] is not None else None
            record = RunRecord(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6] or ()), r[7],
                               interval=interval)  # fmt: skip
            history.setdefault(r[1], []).append(record)
        return history

    def _evidence(
        self, now: dt.datetime, window_start: dt.datetime, history: dict[str, list[RunRecord]]
    ) -> dict[str, dict[str, Any]]:
        with self.app.runner.source.connection("reading the gate's evidence") as conn:
            present = evidence.columns_present(conn, self.settings)
            deps = evidence.dependencies(conn, self.settings)
            available, dealloc, reset = evidence.pgss_state(conn)
            found_readers = evidence.readers(conn, self.settings) if available else []
        baseline = self._pgss_sample(now, window_start, available, dealloc, reset)
        table, columns = evidence.deprecated_columns(self.settings)
        return {
            "columns": {"status": "present" if present else "dropped",
                        "reason": f"{table}: " + (", ".join(present) or "none of "
                                                  + ", ".join(columns))},
            "dependencies": {"status": "found" if deps else "none",
                             "reason": "; ".join(f"{o} uses {c}" for o, c in deps) or "no catalog "
                             "object uses the columns", "objects": [o for o, _ in deps]},
            "readers": _readers(available=available, dealloc=dealloc, reset=reset,
                                baseline=baseline, window_start=window_start, found=found_readers),
            "writers": _writers(history.get("counter_writes"), window_start, now,
                                self.gate.checks, self._writer_lookback(now)),
        }  # fmt: skip

    def _writer_lookback(self, now: dt.datetime) -> dt.timedelta:
        writes = [c for c in self.checks if c.name == "counter_writes"]
        if not writes:
            return dt.timedelta(0)
        return typical_interval(writes[0], now) * self.gate.max_gap_intervals

    def _pgss_sample(
        self, now: dt.datetime, window_start: dt.datetime, available: bool,
        dealloc: int | None, reset: dt.datetime | None,
    ) -> tuple[bool, int | None, dt.datetime | None] | None:  # fmt: skip
        """Record today's pg_stat_statements counters; return the last sample at window start."""
        t = sql.Identifier(self.app.store.schema, "pgss_samples")
        with self.app.store.session("sampling pg_stat_statements") as conn:
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING").format(t),
                (now, available, dealloc, reset),
            )
            row = conn.execute(
                sql.SQL(
                    "SELECT available, dealloc, stats_reset FROM {} WHERE sampled_at <= %s"
                    " ORDER BY sampled_at DESC LIMIT 1"
                ).format(t),
                (window_start,),
            ).fetchone()
        return (bool(row[0]), row[1], row[2]) if row else None


def _clean_since(streaks: list[Streak]) -> dt.datetime | None:
    starts = [s.start for s in streaks]
    if any(s is None for s in starts):
        return None
    return max(s for s in starts if s is not None)


def _readers(
    *, available: bool, dealloc: int | None, reset: dt.datetime | None,
    baseline: tuple[bool, int | None, dt.datetime | None] | None,
    window_start: dt.datetime, found: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    if not available:
        return {"status": "unknown", "reason": "pg_stat_statements is not installed in the "
                "monitored database (CREATE EXTENSION pg_stat_statements)"}  # fmt: skip
    if found:
        who = "; ".join(f"{r['role']} ({r['calls']} calls): {r['query']}" for r in found[:5])
        return {"status": "found", "reason": f"statements name the columns: {who}",
                "statements": found}  # fmt: skip
    if baseline is None or not baseline[0]:
        return {
            "status": "unknown",
            "reason": "no pg_stat_statements sample from before the "
            "window began; each gate evaluation records one (the service every 5 minutes)",
        }
    if reset is not None and reset != baseline[2]:
        return {"status": "unknown", "reason": f"statistics were reset at {reset:%Y-%m-%d %H:%M} "
                "UTC, after the window began"}  # fmt: skip
    if dealloc is not None and baseline[1] is not None and dealloc > baseline[1]:
        return {"status": "unknown", "reason": f"{dealloc - baseline[1]} statements were evicted "
                "since the window began; raise pg_stat_statements.max"}  # fmt: skip
    return {"status": "none", "reason": "no statement by another role names the columns since "
            "the window began (readers on replicas are not visible here)"}  # fmt: skip


def _writers(
    runs: list[RunRecord] | None, window_start: dt.datetime, now: dt.datetime,
    gating: tuple[str, ...], lookback: dt.timedelta,
) -> dict[str, Any]:  # fmt: skip
    if "counter_writes" not in gating:
        return {"status": "unknown", "reason": "counter_writes is not a gating check"}
    # A window shorter than the check's interval still needs its latest run.
    since = min(window_start, now - lookback)
    recent = [r for r in runs or [] if r.finished_at >= since]
    bad = [r for r in recent if r.status == "violation"]
    if bad:
        last = bad[-1]
        return {"status": "found", "reason": f"counter_writes saw changed counters in "
                f"{len(bad)} run(s), last at {last.finished_at:%Y-%m-%d %H:%M} UTC",
                "runs": [r.id for r in bad]}  # fmt: skip
    if not any(r.status == "ok" for r in recent):
        return {"status": "unknown", "reason": "counter_writes has no successful run in the window"}
    span = format_duration(dt.timedelta(seconds=round((now - since).total_seconds())))
    return {"status": "none", "reason": f"counter_writes clean in {len(recent)} run(s) over the "
            f"last {span}"}  # fmt: skip
