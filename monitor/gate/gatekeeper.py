"""Evaluate a plan's gate: history from the state store, evidence from the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from alerts import Clock
from checks import Check, all_checks
from config import DqError, Settings, format_duration
from monitor.db import ConnectionSource
from monitor.gate import evidence, pgss, standbys
from monitor.gate.flags_plan import constraint_evidence
from monitor.gate.names import DROP_COUNTER_COLUMNS
from monitor.gate.plans import plan_spec, service_key
from monitor.gate.rules import GateRules, ResolvedRules, resolve
from monitor.gate.sqlreads import Target
from monitor.gate.verdict import Finding, GateReport, Pending, Streak, analyse, decide, plural
from monitor.store import (
    PRIMARY_SERVER,
    GateHistory,
    PgssSamples,
    RunRecord,
    Sample,
    Silence,
    Silences,
    StateStore,
)


def typical_interval(check: Check, now: dt.datetime) -> dt.timedelta:
    """The check's schedule interval; for a cron schedule, the gap between two firings."""
    return check.settings.typical_interval(now)


class Gatekeeper:
    """Decides whether a plan (migration 005 unless named) may run, and says why.

    The rules are the configured ones, but never below their floors: the plan's gating
    checks, the defaults, and (unless this is the service) the rules the service last
    recorded; weaker ones apply only with gate.accept_weaker_settings (see gate_rules).
    History and samples come from `store`; the evidence from `source`, the monitored
    database's primary, and the reader evidence also from each of its standbys
    (standby_urls), whose pg_stat_statements the primary cannot see.
    """

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        source: ConnectionSource,
        clock: Clock,
        plan_checks: Sequence[str] | None = None,
        *,
        as_service: bool = False,
        plan: str = DROP_COUNTER_COLUMNS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.source = source
        self.clock = clock
        self.spec = plan_spec(plan)
        self.plan_checks = tuple(self.spec.gating_checks if plan_checks is None else plan_checks)
        self.as_service = as_service
        self.by_name = {c.name: c for c in all_checks(settings)}
        # gate.checks is migration 005's list; another plan gates on its own checks.
        own = {"checks": self.plan_checks}
        self.configured = (
            settings.gate if self.spec.configured_checks else settings.gate.model_copy(update=own)
        )
        # Replaced by the resolved rules when evaluate() runs.
        self.gate = self.configured
        self.checks = [self.by_name[name] for name in self.gate.checks]

    def evaluate(self, now: dt.datetime | None = None) -> GateReport:
        """Raises DatabaseUnavailable, SetupError (a table, column or grant is missing),
        StoreError/StoreUnavailable or GateError."""
        now = now or self.clock.now()
        resolved = self._resolve()
        self.gate = self.configured.model_copy(update=resolved.rules.settings_update())
        self.checks = [self.by_name[n] for n in resolved.rules.checks if n in self.by_name]
        window_start = now - self.gate.required_clean_period
        history, streaks = self._streaks(now, window_start)
        blockers = [b for s in streaks for b in s.blockers]
        blockers += [
            Finding("settings", f"the service also gates on {name}, which this configuration "
                    "does not define; evaluate with the service's configuration", name)
            for name in resolved.unrecorded
        ]  # fmt: skip
        silences = Silences(self.store, self.settings).between(window_start, now)
        clean_since = self._after_silences(silences, now, _clean_since(streaks), blockers)
        found = self._evidence(now, window_start, history)
        waiting: list[Pending] = []
        for name, item in found.items():
            if item["status"] == "found" and name in ("dependencies", "readers"):
                blockers.append(_found(name, item))
            if item["status"] != "unknown" or not self.gate.unknown_blocks:
                continue
            if name == "readers" and item.get("time_only"):
                since = dt.datetime.fromisoformat(item["coverage_since"])
                complete = since + self.gate.required_clean_period
                item["complete_at"] = complete.isoformat()
                waiting.append(Pending("readers", since, complete))
            else:
                blockers.append(Finding("unknown", f"{name}: {item['reason']}"))
        decision, clean_since, pending = decide(
            now, self.gate.required_clean_period, clean_since, blockers, waiting
        )
        return GateReport(
            plan=self.spec.name,
            now=now, required=self.gate.required_clean_period, decision=decision,
            clean_since=clean_since, streaks=streaks, blockers=blockers, evidence=found,
            silences=[s.describe(now) for s in silences],
            settings=resolved.as_json(self._interval_notes(streaks, now)),
            warning=resolved.warning, pending=pending,
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
            recorded = self.store.service_state(service_key(self.spec.name)) or {}
            service = GateRules.from_json(recorded.get("settings"))
        return resolve(self.configured, self.plan_checks, service, list(self.by_name))

    def _streaks(
        self, now: dt.datetime, window_start: dt.datetime
    ) -> tuple[dict[str, list[RunRecord]], list[Streak]]:
        """Each gating check's streak; gaps judged by the intervals the runs recorded."""
        k = self.gate.max_gap_intervals
        # Today's interval only for runs that recorded none (and to bound the history read).
        gaps = {c.name: typical_interval(c, now) * k for c in self.checks}
        horizon = window_start - self.gate.full_sweep_max_gap - max(gaps.values())
        history = GateHistory(self.store).runs(self.gate.checks, horizon)
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
                    f"{s.check}: {plural(s.fallback_runs, 'check run')} without a recorded "
                    "interval (written before dq-monitor kept it) were judged by today's "
                    f"interval {today}"
                )
        return notes

    def _evidence(
        self, now: dt.datetime, window_start: dt.datetime, history: dict[str, list[RunRecord]]
    ) -> dict[str, dict[str, Any]]:
        source = self.source
        if "constraint" in self.spec.evidence:
            with source.connection("reading the gate's evidence") as conn:
                return {"constraint": constraint_evidence(conn, self.settings)}
        with source.connection("reading the gate's evidence") as conn:
            present = evidence.columns_present(conn, self.settings)
            rels = evidence.relations(conn, self.settings)
            deps = evidence.dependencies(conn, self.settings, rels)
            blind = evidence.publications(conn, self.settings, rels)
        target = evidence.target(self.settings, rels)

        def read() -> pgss.Snapshot:
            with source.connection("reading pg_stat_statements") as conn:
                return pgss.snapshot(conn, self.settings, target)

        snap, coverage = self._pgss_sample(PRIMARY_SERVER, now, window_start, read)
        readers = standbys.combine(
            pgss.verdict(snap, coverage, blind), self._standby_readers(now, window_start, target)
        )
        table, columns = evidence.deprecated_columns(self.settings)
        return {
            "columns": {"status": "present" if present else "dropped",
                        "reason": f"{table}: " + (", ".join(present) or "none of "
                                                  + ", ".join(columns))},
            "dependencies": {"status": "found" if deps else "none",
                             "reason": "; ".join(f"{o} {w}" for o, w in deps) or "no catalog "
                             "object uses the columns or reads whole rows of the table",
                             "objects": list(dict.fromkeys(o for o, _ in deps))},
            "readers": readers,
            "writers": _writers(history.get("counter_writes"), window_start, now,
                                self.gate.checks, self._writer_lookback(now)),
        }  # fmt: skip

    def _writer_lookback(self, now: dt.datetime) -> dt.timedelta:
        writes = [c for c in self.checks if c.name == "counter_writes"]
        if not writes:
            return dt.timedelta(0)
        return typical_interval(writes[0], now) * self.gate.max_gap_intervals

    def _standby_readers(
        self, now: dt.datetime, window_start: dt.datetime, target: Target
    ) -> list[tuple[str, dict[str, Any]]]:
        """Each standby's readers verdict, sampled like the primary's. One that cannot be
        read is unknown, never none, and is recorded as an unavailable sample; once it can be
        read again its statistics are compared with its last readable sample, whose counters
        the store kept."""
        found: list[tuple[str, dict[str, Any]]] = []
        for standby in standbys.open_standbys(self.settings, self.clock):
            failure: list[str] = []

            def read(
                source: ConnectionSource = standby.source, failure: list[str] = failure
            ) -> pgss.Snapshot:
                try:
                    with source.connection("reading pg_stat_statements") as conn:
                        return pgss.snapshot(conn, self.settings, target)
                except DqError as exc:
                    failure.append(str(exc))
                    return pgss.Snapshot(available=False)

            try:
                snap, coverage = self._pgss_sample(standby.server, now, window_start, read)
            finally:
                standby.source.close()
            if failure:
                item = standbys.unreadable(standby.server, failure[0])
            elif not snap.available:
                item = standbys.unreadable(
                    standby.server, "pg_stat_statements_info cannot be read there"
                )
            else:
                item = standbys.on_standby(standby.server, pgss.verdict(snap, coverage))
            found.append((standby.server, item))
        return found

    def _pgss_sample(
        self, server: str, now: dt.datetime, window_start: dt.datetime,
        read: Callable[[], pgss.Snapshot],
    ) -> tuple[pgss.Snapshot, pgss.Coverage]:  # fmt: skip
        """Sample pg_stat_statements (under a lock, so evaluations take turns), compare every
        statement's calls with the previous sample, record both; return the sample at window
        start and the statements lost since."""
        with PgssSamples(self.store).turn() as turn:
            snap = read()
            previous = turn.counters(server, snap.dbid)
            # Without the extension nothing was read: that is not a statement lost.
            count, detail = (pgss.lost(previous, snap.counters, snap.roles)
                             if snap.available else (0, ""))  # fmt: skip
            statements = len(snap.counters) if snap.available else None
            sample = Sample(snap.available, snap.dealloc, snap.stats_reset, statements)
            turn.record(server, now, sample, count, detail or None)
            if snap.available:
                turn.replace_counters(server, snap.dbid, snap.counters)
            baseline = turn.baseline(server, window_start)
            whole = baseline is not None and baseline.available and baseline.statements is not None
            since = None if whole else turn.coverage_start(server, window_start)
            lost = turn.losses(server, window_start, now)
        if count:  # lost since the previous sample: perhaps inside the window, so counted
            lost.append((now, count, detail))
        return snap, pgss.Coverage(baseline, lost, since)


def _found(name: str, item: dict[str, Any]) -> Finding:
    """A dependency or a reader the evidence found; a reader named by its roles."""
    if name == "dependencies":
        return Finding("dependency", item["reason"])
    statements = item.get("statements") or []
    roles = ", ".join(dict.fromkeys(str(s["role"]) for s in statements)) or "unknown roles"
    servers = ", ".join(dict.fromkeys(str(s["server"]) for s in statements if "server" in s))
    on_primary = any("server" not in s for s in statements)
    where = (f" on {'the primary and ' if on_primary else ''}standby {servers}"
             if servers else "")  # fmt: skip
    brief = (f"readers: {plural(len(statements), 'statement')} by {roles}{where} could read "
             "the counters")  # fmt: skip
    return Finding("reader", item["reason"], count=len(statements), brief=brief)


def _clean_since(streaks: list[Streak]) -> dt.datetime | None:
    starts = [s.start for s in streaks]
    if any(s is None for s in starts):
        return None
    return max(s for s in starts if s is not None)


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
        jobs = plural(sum(r.violations or 0 for r in bad), "job run")
        return {"status": "found", "reason": f"counter_writes saw changed counters in "
                f"{plural(len(bad), 'check run')} ({jobs}), last at "
                f"{last.finished_at:%Y-%m-%d %H:%M} UTC", "runs": [r.id for r in bad]}  # fmt: skip
    if not any(r.status == "ok" for r in recent):
        return {"status": "unknown", "reason": "counter_writes has no successful run in the window"}
    span = format_duration(dt.timedelta(seconds=round((now - since).total_seconds())))
    return {"status": "none", "reason": f"counter_writes clean in "
            f"{plural(len(recent), 'check run')} over the last {span}"}  # fmt: skip
