"""What holds the gate: each blocker alone gives BLOCKED (exit 1) naming it, evidence only time
completes gives NOT YET (exit 4) with when, and a clean database opens as the clock passes."""

from __future__ import annotations

import datetime as dt

import pytest

from config import load_settings
from monitor.app import App
from monitor.gate.pgss import Coverage, Sample, Snapshot, verdict
from monitor.gate.report import render_text
from monitor.gate.verdict import (
    Decision,
    Finding,
    GateReport,
    Pending,
    RunRecord,
    analyse,
    decide,
)
from tests.factories import seed_race
from tests.helpers import FakeClock, evaluate_gate, run_cli
from tests.monitor.gate.test_gate import GATING, insert_history

NOW = dt.datetime(2026, 12, 1, 10, 11, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
GAP = dt.timedelta(minutes=15)
FULL_GAP = dt.timedelta(hours=26)


def report(
    blockers: list[Finding] = (),  # type: ignore[assignment]
    waiting: list[Pending] = (),  # type: ignore[assignment]
    clean_since: dt.datetime | None = NOW - dt.timedelta(days=8),
) -> GateReport:
    decision, since, pending = decide(NOW, WEEK, clean_since, list(blockers), list(waiting))
    return GateReport(plan="drop_counter_columns", now=NOW, required=WEEK, decision=decision,
                      clean_since=since, streaks=[], blockers=list(blockers), evidence={},
                      silences=[], pending=pending)  # fmt: skip


def last_run_blocker(status: str, violations: int = 0, samples=(), error=None, check="x"):
    """The blocker analyse() makes of a clean history whose latest run is `status`."""
    runs = [RunRecord(1, check, NOW - dt.timedelta(minutes=10), "full", "ok", 0),
            RunRecord(2, check, NOW - dt.timedelta(minutes=5), "incremental", status,
                      violations, tuple(samples), error=error)]  # fmt: skip
    streak = analyse(check, runs, now=NOW, horizon=NOW - dt.timedelta(days=30), max_gap=GAP,
                     full_gap=FULL_GAP)  # fmt: skip
    assert len(streak.blockers) == 1, streak.blockers
    return streak.blockers[0]


# --- each blocker kind alone (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("violations", "samples", "named"),
    [
        (1, [{"run_id": "r1"}], "dashboard_mismatch (1 violation in job run r1)"),
        (2, [{"run_id": "r1"}, {"run_id": "r2"}],
         "dashboard_mismatch (2 violations in job runs r1, r2)"),
        (13, [{"run_id": f"r{i}"} for i in range(1, 11)],
         "dashboard_mismatch (13 violations in job runs r1, r2, r3 ...)"),
        (3, [], "dashboard_mismatch (3 violations in check run 2)"),
    ],
    ids=["one", "two", "more-than-shown", "no-samples"],
)  # fmt: skip
def test_a_violation_names_its_check_count_and_job_runs(violations, samples, named):
    blocker = last_run_blocker("violation", violations, samples, check="dashboard_mismatch")
    r = report([blocker])
    assert (r.decision, r.decision.exit_code) == (Decision.BLOCKED, 1)
    assert r.headline() == f"BLOCKED by: {named}"
    assert r.held_by() == [named]


def test_changed_counters_name_the_writers_and_their_job_runs():
    samples = [{"run_id": f"r{i}"} for i in range(6)]
    r = report([last_run_blocker("violation", 6, samples, check="counter_writes")])
    assert r.headline() == (
        "BLOCKED by: writers: counter_writes saw changed counters in 6 job runs (r0, r1, r2 ...)"
    )
    one = report([last_run_blocker("violation", 1, [{"run_id": "r9"}], check="counter_writes")])
    assert one.headline().endswith("in 1 job run (r9)")


@pytest.mark.parametrize(
    ("blocker", "named"),
    [
        (lambda: last_run_blocker("error", error="boom", check="flag_conflict"),
         "flag_conflict (check run 2 failed: boom)"),
        (lambda: analyse("flag_conflict", [], now=NOW, horizon=NOW, max_gap=GAP,
                         full_gap=FULL_GAP).blockers[0],
         "flag_conflict (no successful run recorded)"),
        (lambda: Finding("silence", "silenced by carol: noisy", "flag_conflict", NOW),
         "flag_conflict (silenced by carol: noisy)"),
        (lambda: Finding("dependency", "view failures uses failed_workers"),
         "dependencies: view failures uses failed_workers"),
        (lambda: Finding("unknown", "readers: statistics were reset at 2026-12-01 09:00 UTC, "
                         "after the window began"),
         "readers: statistics were reset at 2026-12-01 09:00 UTC, after the window began"),
        (lambda: Finding("settings", "the service also gates on stale_partitions, which this "
                         "configuration does not define", "stale_partitions"),
         "settings: the service also gates on stale_partitions, which this configuration does "
         "not define"),
    ],
    ids=["error", "gap", "silence", "dependency", "unknown", "settings"],
)  # fmt: skip
def test_each_other_blocker_alone_is_named(blocker, named):
    r = report([blocker()])
    assert (r.decision, r.decision.exit_code) == (Decision.BLOCKED, 1)
    assert r.headline() == f"BLOCKED by: {named}"
    assert r.clean_since is None


def test_a_missing_full_sweep_is_named():
    runs = [RunRecord(1, "flag_conflict", NOW - dt.timedelta(hours=30), "full", "ok", 0),
            RunRecord(2, "flag_conflict", NOW - dt.timedelta(minutes=5), "incremental", "ok",
                      0)]  # fmt: skip
    streak = analyse("flag_conflict", runs, now=NOW, horizon=NOW - dt.timedelta(days=30),
                     max_gap=dt.timedelta(days=2), full_gap=FULL_GAP)  # fmt: skip
    r = report(streak.blockers + streak.restarts)
    assert r.decision is Decision.BLOCKED
    assert r.headline().startswith("BLOCKED by: flag_conflict (no clean full sweep for ")


def test_several_blockers_are_all_named_in_order():
    r = report([last_run_blocker("violation", 13, [{"run_id": "r1"}, {"run_id": "r2"}],
                                 check="dashboard_mismatch"),
                last_run_blocker("violation", 6, [], check="counter_writes")])  # fmt: skip
    assert r.headline() == (
        "BLOCKED by: dashboard_mismatch (13 violations in job runs r1, r2 ...); "
        "writers: counter_writes saw changed counters in 6 job runs"
    )


def test_a_check_held_twice_is_named_once_with_both_reasons():
    gap = analyse("dashboard_mismatch", [], now=NOW, horizon=NOW, max_gap=GAP,
                  full_gap=FULL_GAP).blockers[0]  # fmt: skip
    r = report([last_run_blocker("violation", 1, [{"run_id": "r2"}], check="dashboard_mismatch"),
                gap, Finding("dependency", "view v uses failed_workers"),
                last_run_blocker("violation", 2, [], check="missing_worker_runs")])  # fmt: skip
    assert r.headline() == (
        "BLOCKED by: dashboard_mismatch (1 violation in job run r2; no successful run "
        "recorded); dependencies: view v uses failed_workers; missing_worker_runs (2 violations "
        "in check run 2)"
    )
    assert len(r.held_by()) == 4  # the JSON's list keeps one entry per finding


def test_a_blocker_wins_over_anything_time_would_complete():
    coverage = Pending("readers", NOW - dt.timedelta(hours=2), NOW + dt.timedelta(days=7))
    r = report([Finding("dependency", "view v uses failed_workers")], [coverage],
               clean_since=NOW - dt.timedelta(hours=2))  # fmt: skip
    assert r.decision is Decision.BLOCKED
    assert r.pending == []
    assert r.complete_at is None


# --- not yet: only time is missing (pure) ----------------------------------------------------


def test_a_short_streak_is_not_yet_with_when_it_completes():
    r = report(clean_since=NOW - dt.timedelta(days=3))
    assert (r.decision, r.decision.exit_code) == (Decision.NOT_YET, 4)
    assert r.headline() == "NOT YET: clean for 3d of 7d, complete 2026-12-05 10:11 UTC"
    assert r.remaining == dt.timedelta(days=4)


def test_reader_coverage_since_inside_the_window_is_not_yet():
    since = dt.datetime(2026, 12, 1, 8, 11, tzinfo=dt.UTC)
    r = report(waiting=[Pending("readers", since, since + WEEK)],
               clean_since=NOW - dt.timedelta(hours=2))  # fmt: skip
    assert (r.decision, r.decision.exit_code) == (Decision.NOT_YET, 4)
    assert r.headline() == (
        "NOT YET: clean for 2h of 7d; reader coverage since 08:11, complete 2026-12-08 08:11 UTC"
    )
    assert r.complete_at == since + WEEK
    assert r.remaining == since + WEEK - NOW  # the later of the two


def test_reader_coverage_alone_holds_a_complete_streak():
    since = dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)
    r = report(waiting=[Pending("readers", since, since + WEEK)])
    assert r.decision is Decision.NOT_YET
    assert r.headline() == (
        "NOT YET: reader coverage since 2026-11-30 23:00 UTC, complete 2026-12-07 23:00 UTC"
    )
    body = r.as_json()
    assert body["headline"] == r.headline()
    assert body["complete_at"] == (since + WEEK).isoformat()
    assert body["pending"] == [{"kind": "readers", "since": since.isoformat(),
                                "complete_at": (since + WEEK).isoformat()}]  # fmt: skip


def test_no_streak_yet_is_not_yet_at_the_earliest():
    r = report(clean_since=None)
    assert r.decision is Decision.NOT_YET
    assert r.headline() == ("NOT YET: no clean streak yet (the next clean full sweep starts it), "
                            "complete 2026-12-08 10:11 UTC at the earliest")  # fmt: skip


def test_open_needs_the_period_and_nothing_waiting():
    r = report()
    assert (r.decision, r.decision.exit_code) == (Decision.OPEN, 0)
    assert r.held_by() == []
    assert r.headline().startswith("OPEN: ")


def test_the_evidence_hash_does_not_move_with_the_headline():
    a = report(clean_since=NOW - dt.timedelta(days=3))
    b = GateReport(**{**a.__dict__, "now": NOW + dt.timedelta(hours=1)})
    assert a.headline() != b.headline()
    assert a.evidence_hash() == b.evidence_hash()


# --- the readers verdict: what time completes and what it does not (pure) ---------------------

RESET = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
FIRST = Sample(True, 3, RESET, 120)


def snap(**changes) -> Snapshot:
    values = {"available": True, "dealloc": 3, "stats_reset": RESET, "monitor_role": "dq_monitor"}
    return Snapshot(**(values | changes))


def test_coverage_whole_since_a_sample_inside_the_window_is_time_only():
    item = verdict(snap(), Coverage(None, [], (NOW, FIRST)))
    assert item["status"] == "unknown"
    assert item["time_only"] is True
    assert item["coverage_since"] == NOW.isoformat()
    assert "no pg_stat_statements sample" in item["reason"]


@pytest.mark.parametrize(
    ("current", "coverage", "words"),
    [
        (snap(stats_reset=NOW), Coverage(None, [], (NOW, FIRST)), "statistics were reset"),
        (snap(dealloc=5), Coverage(None, [], (NOW, FIRST)), "2 statements were evicted"),
        (snap(), Coverage(None, [(NOW, 1, "app (1)")], (NOW, FIRST)), "disappeared"),
        (snap(hidden={"app": 1}), Coverage(None, [], (NOW, FIRST)), "GRANT pg_read_all_stats"),
        (snap(untracked=["role app: track = none"]), Coverage(None, [], (NOW, FIRST)),
         "role app"),
        (snap(), Coverage(None, []), "no pg_stat_statements sample"),
        (snap(available=False), Coverage(None, [], (NOW, FIRST)), "not installed"),
    ],
    ids=["reset", "evicted", "lost", "hidden", "untracked", "no-sample-at-all", "missing"],
)  # fmt: skip
def test_what_time_alone_will_not_supply_is_not_time_only(current, coverage, words):
    item = verdict(current, coverage)
    assert item["status"] == "unknown"
    assert "time_only" not in item
    assert words in item["reason"]


def test_a_blind_spot_is_not_time_only():
    item = verdict(snap(), Coverage(None, [], (NOW, FIRST)), ["publication p publishes them"])
    assert "time_only" not in item


# --- on a real database ----------------------------------------------------------------------


@pytest.fixture
def fresh(monkeypatch, db_url, db):
    """pg_stat_statements installed, never sampled: the release manager's first `gate`."""
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    for name in GATING:
        monkeypatch.setenv(f"DQ_CHECKS__{name.upper()}__INTERVAL", "6h")
    db.execute("SET pg_stat_statements.track = none")  # seeding the tables is not reading them
    db.execute("CREATE EXTENSION pg_stat_statements")
    App.open(load_settings(), clock=FakeClock(), alerts=False).close()  # the state schema
    return db


def test_a_clean_database_goes_from_not_yet_to_open_as_the_clock_passes(fresh):
    start = dt.datetime.now(dt.UTC)
    clock = FakeClock(start)
    app = App.open(load_settings(), clock=clock, alerts=False)
    seen = {}
    try:
        for i in range(7 * 4 + 2):  # every 6 h for a week and a bit; a full sweep daily
            clock.current = start + dt.timedelta(hours=6 * i)
            app.pipeline.run(GATING, full=i % 4 == 0)
            seen[i] = evaluate_gate(clock.current)
    finally:
        app.close()

    first = seen[0]
    assert (first.decision, first.decision.exit_code) == (Decision.NOT_YET, 4), render_text(first)
    assert first.blockers == []
    assert first.evidence["readers"]["time_only"] is True
    headline = first.headline()
    assert headline.startswith("NOT YET: clean for 0s of 7d; reader coverage since ")
    assert headline.endswith(f", complete {(start + WEEK):%Y-%m-%d %H:%M} UTC")
    assert render_text(first).splitlines()[0] == f"gate: {headline}"

    day = seen[4]
    assert day.decision is Decision.NOT_YET, render_text(day)
    assert day.headline().startswith("NOT YET: clean for 1d of 7d; reader coverage since ")
    assert day.complete_at == start + WEEK

    last_not_yet, opened = seen[27], seen[28]  # 6 h short of the week, then the week
    assert last_not_yet.decision is Decision.NOT_YET, render_text(last_not_yet)
    assert last_not_yet.remaining == dt.timedelta(hours=6)
    assert opened.decision is Decision.OPEN, render_text(opened)
    assert opened.evidence["readers"]["status"] == "none"
    assert opened.headline().startswith("OPEN: ")
    assert seen[29].decision is Decision.OPEN


def test_the_first_gate_on_a_clean_database_is_not_yet_in_every_format(fresh, capsys):
    insert_history(fresh, 8)
    code, out, _ = run_cli(capsys, "gate")
    assert code == 4, out
    first = out.splitlines()[0]
    assert first.startswith("gate: NOT YET: reader coverage since "), out
    assert "waiting for time" in out
    code, out, _ = run_cli(capsys, "gate", "--format", "markdown")
    assert code == 4
    assert "**Decision: NOT YET: reader coverage since " in out
    assert "### Waiting for time" in out


def test_a_reset_inside_the_window_blocks_naming_it(fresh):
    evaluate_gate(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    insert_history(fresh, 8)
    fresh.execute("SELECT pg_stat_statements_reset()")
    r = evaluate_gate(dt.datetime.now(dt.UTC))
    assert (r.decision, r.decision.exit_code) == (Decision.BLOCKED, 1)
    assert r.headline().startswith("BLOCKED by: readers: statistics were reset at ")


def test_a_missing_extension_blocks_naming_it(fresh):
    fresh.execute("DROP EXTENSION pg_stat_statements")
    insert_history(fresh, 8)
    r = evaluate_gate(dt.datetime.now(dt.UTC))
    assert r.decision is Decision.BLOCKED
    assert r.headline().startswith("BLOCKED by: readers: pg_stat_statements is not installed")


def test_a_violation_blocks_and_migrate_refuses_with_the_same_list(fresh, capsys):
    evaluate_gate(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    insert_history(fresh, 8)
    seed_race(fresh, "race")
    run_cli(capsys, "check", "--check", "dashboard_mismatch")
    code, out, _ = run_cli(capsys, "gate")
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("gate: BLOCKED by: dashboard_mismatch (")
    assert "in job run race" in first
    held = first.removeprefix("gate: BLOCKED by: ")
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    assert code == 1, out + err
    assert f"refused: the gate is blocked ({held}); run `dq-monitor gate`" in err
    code, out, _ = run_cli(capsys, "gate", "--format", "json")
    assert held in out  # the JSON's headline and held_by


def test_migrate_refuses_not_yet_naming_what_time_completes(fresh, capsys):
    insert_history(fresh, 3)
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    assert code == 1, out + err
    assert "refused: the gate is not_yet (clean for 3d" in err
    assert " of 7d; reader coverage since " in err
