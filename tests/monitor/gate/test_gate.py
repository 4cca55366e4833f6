"""The gate's streak rules on hand-made history (pure), then on a real database."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from checks import REGISTRY
from monitor.gate.verdict import RunRecord, analyse
from tests.factories import seed_race
from tests.helpers import evaluate_gate, run_cli

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
GAP = dt.timedelta(minutes=15)
FULL_GAP = dt.timedelta(hours=26)


def history(days: float, *, every=dt.timedelta(minutes=5), end=NOW, check="flag_conflict"):
    """Clean runs every 5 minutes for `days`, a full sweep once a day."""
    runs, t, i = [], end - dt.timedelta(days=days), 0
    while t <= end:
        mode = "full" if i % int(dt.timedelta(days=1) / every) == 0 else "incremental"
        runs.append(RunRecord(i, check, t, mode, "ok", 0))
        t, i = t + every, i + 1
    return runs


def streak(runs, horizon=NOW - dt.timedelta(days=30)):
    return analyse("flag_conflict", runs, now=NOW, horizon=horizon, max_gap=GAP,
                   full_gap=FULL_GAP)  # fmt: skip


def test_clean_history_starts_at_the_first_full_sweep():
    s = streak(history(8))
    assert s.blockers == []
    assert s.start == NOW - dt.timedelta(days=8)


def test_a_violation_restarts_the_streak_at_the_next_clean_full_sweep():
    runs = history(8)
    bad = runs[500]
    runs[500] = RunRecord(bad.id, bad.check, bad.finished_at, "incremental", "violation", 2,
                          ({"run_id": "r9"},))  # fmt: skip
    s = streak(runs)
    assert s.start is not None
    assert s.start > bad.finished_at
    assert runs[576].mode == "full"  # the second day's sweep
    assert s.start == runs[576].finished_at
    assert s.restarts[0].kind == "violation"
    assert s.restarts[0].sample_runs == ("r9",)


def test_a_gap_restarts_the_streak():
    runs = [r for r in history(8) if not (1000 <= r.id < 1010)]  # 50 minutes without a run
    s = streak(runs)
    assert s.restarts[0].kind == "gap"
    assert "no successful run for 55m" in s.restarts[0].detail
    assert s.start is not None
    assert s.start > runs[1000].finished_at


def test_missed_runs_are_not_successes():
    runs = history(2)
    for i in range(100, 110):
        r = runs[i]
        runs[i] = RunRecord(r.id, r.check, r.finished_at, r.mode, "missed")
    assert streak(runs).restarts[0].kind == "gap"


def test_a_day_without_a_clean_full_sweep_restarts_the_streak():
    runs = [r for r in history(8) if not (r.mode == "full" and 2 < r.id // 288 < 4)]
    s = streak(runs)
    assert any(f.kind == "full_sweep" for f in s.restarts)


@pytest.mark.parametrize(("last_status", "kind"), [("violation", "violation"), ("error", "error")])
def test_a_failing_latest_run_blocks(last_status, kind):
    runs = history(3)
    last = runs[-1]
    runs[-1] = RunRecord(last.id, last.check, last.finished_at, last.mode, last_status, 1,
                         error="boom" if last_status == "error" else None)  # fmt: skip
    s = streak(runs)
    assert s.start is None
    assert s.blockers[0].kind == kind
    assert s.blockers[0].runs == (last.id,)


def test_no_recent_success_blocks():
    s = streak(history(3, end=NOW - dt.timedelta(hours=1)))
    assert s.start is None
    assert "no successful run for 1h" in s.blockers[0].detail


def test_no_history_blocks():
    assert streak([]).blockers[0].detail == "no successful run recorded"


def every_six_hours(skip=(), interval=dt.timedelta(hours=6)):
    """Eight days of runs every 6 h that recorded `interval`, a full sweep every fourth."""
    return [
        RunRecord(i, "flag_conflict", NOW - dt.timedelta(hours=6 * (32 - i)),
                  "full" if i % 4 == 0 else "incremental", "ok", 0, interval=interval)
        for i in range(33) if i not in skip
    ]  # fmt: skip


def test_a_gap_is_judged_by_the_interval_its_run_recorded():
    # Today's setting would allow 36 h; the runs were scheduled every 6 h, so 18 h.
    s = analyse("flag_conflict", every_six_hours(skip=(17, 18, 19)), now=NOW,
                horizon=NOW - dt.timedelta(days=30), max_gap=dt.timedelta(hours=36),
                full_gap=FULL_GAP, gap_intervals=3)  # fmt: skip
    assert [f.kind for f in s.restarts] == ["gap"]
    assert "no successful run for 1d (allowed 18h: 3 x 6h recorded)" in s.restarts[0].detail
    assert s.start == NOW - dt.timedelta(days=3)
    assert s.fallback_runs == 0


def test_the_time_since_the_last_run_is_judged_by_its_recorded_interval():
    s = analyse("flag_conflict", every_six_hours(), now=NOW + dt.timedelta(hours=19),
                horizon=NOW - dt.timedelta(days=30), max_gap=dt.timedelta(hours=36),
                full_gap=FULL_GAP, gap_intervals=3)  # fmt: skip
    assert s.start is None
    assert "no successful run for 19h (allowed 18h: 3 x 6h recorded)" in s.blockers[0].detail


def test_runs_without_a_recorded_interval_fall_back_and_are_counted():
    runs = history(2)
    s = streak(runs)
    assert s.fallback_runs == len(runs)
    assert s.blockers == []


# --- On a real database: recorded history, evidence and the CLI contract -----------------

GATING = list(REGISTRY.gating)


def insert_history(db, days: float, *, gap_at: float | None = None) -> None:
    """Clean runs of every gating check every 5 minutes for `days`, ending now."""
    db.execute(
        "INSERT INTO dq_monitor.check_runs (check_name, started_at, finished_at, mode, status,"
        " severity, violations, fingerprint, trigger)"
        " SELECT c, t, t, CASE WHEN n %% 288 = 0 THEN 'full' ELSE 'incremental' END, 'ok',"
        " 'warning', 0, 'seeded', 'scheduled'"
        " FROM unnest(%s::text[]) AS c,"
        " generate_series(0, (%s * 288)::int) AS n,"
        " LATERAL (SELECT now() - make_interval(mins => 5 * ((%s * 288)::int - n))) AS x(t)"
        " WHERE %s::float IS NULL OR abs(extract(epoch FROM now() - t) / 86400 - %s) > 0.05",
        (GATING, days, days, gap_at, gap_at),
    )


@pytest.fixture
def gate_env(monkeypatch, db_url, db, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    db.execute("SET pg_stat_statements.track = none")  # seeding the tables is not reading them
    db.execute("CREATE EXTENSION pg_stat_statements")
    # pg_stat_statements as it was when the window began (the service samples it).
    evaluate_gate(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    return db


def gate_json(capsys, *args):
    code, out, err = run_cli(capsys, "gate", "--format", "json", *args)
    assert out, err
    return code, json.loads(out)


def test_open_after_a_clean_recorded_week(gate_env, capsys):
    insert_history(gate_env, 8)
    code, report = gate_json(capsys)
    assert (code, report["decision"]) == (0, "open"), report
    assert report["blockers"] == []
    assert report["clean_seconds"] >= 7 * 86400
    assert report["evidence"]["readers"]["status"] == "none"
    assert report["evidence"]["writers"]["status"] == "none"
    assert report["evidence"]["dependencies"]["status"] == "none"


def test_not_yet_eligible_after_three_clean_days(gate_env, capsys):
    insert_history(gate_env, 3)
    code, report = gate_json(capsys)
    assert (code, report["decision"]) == (4, "not_yet")
    assert report["remaining"].startswith("4d")


def test_a_gap_resets_the_streak(gate_env, capsys):
    insert_history(gate_env, 8, gap_at=2.0)  # two hours without runs, two days ago
    code, report = gate_json(capsys)
    assert code == 4
    # The gap also took out that day's full sweep: the streak restarts at the next one.
    assert 86400 <= report["clean_seconds"] < 2 * 86400
    restarts = [r for c in report["checks"] for r in c["restarted_by"]]
    assert {r["kind"] for r in restarts} >= {"gap"}


def test_a_current_violation_blocks_with_its_runs(gate_env, capsys):
    insert_history(gate_env, 8)
    seed_race(gate_env, "race")
    run_cli(capsys, "check", "--check", "dashboard_mismatch")
    code, report = gate_json(capsys)
    assert (code, report["decision"]) == (1, "blocked")
    blocker = report["blockers"][0]
    assert (blocker["kind"], blocker["check"]) == ("violation", "dashboard_mismatch")
    assert blocker["sample_runs"] == ["race"]
    assert blocker["runs"]


def test_an_active_silence_blocks(gate_env, capsys):
    insert_history(gate_env, 8)
    run_cli(capsys, "silence", "add", "flag_conflict", "--for", "1h", "--reason", "noisy",
            "--by", "carol")  # fmt: skip
    code, report = gate_json(capsys)
    assert code == 1
    assert report["blockers"][0]["kind"] == "silence"
    assert "carol" in report["silences"][0]


def test_a_view_on_failed_workers_blocks(gate_env, capsys):
    insert_history(gate_env, 8)
    gate_env.execute("CREATE VIEW failures AS SELECT run_id, failed_workers FROM run_metadata")
    code, report = gate_json(capsys)
    assert code == 1
    assert report["evidence"]["dependencies"]["objects"] == ["view failures"]
    assert report["blockers"][0]["kind"] == "dependency"


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        ("CREATE INDEX ON run_metadata (completed_workers)", "index "),
        ("ALTER TABLE run_metadata ADD CHECK (failed_workers >= 0)", "constraint "),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT sum(failed_workers)::int"
         " FROM run_metadata $$", "function f()"),
    ],
)  # fmt: skip
def test_other_catalog_dependencies_block(gate_env, capsys, ddl, expected):
    insert_history(gate_env, 8)
    gate_env.execute(ddl)
    code, report = gate_json(capsys)
    assert code == 1
    assert any(o.startswith(expected) for o in report["evidence"]["dependencies"]["objects"])


def test_a_reader_in_pg_stat_statements_blocks(gate_env, capsys, db_url):
    import psycopg

    insert_history(gate_env, 8)
    gate_env.execute("CREATE ROLE dashboard_app LOGIN")
    gate_env.execute("GRANT SELECT ON run_metadata TO dashboard_app")
    reader = psycopg.conninfo.make_conninfo(db_url, user="dashboard_app")
    with psycopg.connect(reader) as conn:
        conn.execute("SELECT run_id, failed_workers FROM run_metadata").fetchall()
    code, report = gate_json(capsys)
    assert code == 1
    readers = report["evidence"]["readers"]
    assert readers["status"] == "found"
    assert readers["statements"][0]["role"] == "dashboard_app"


def test_statistics_reset_makes_readers_unknown_which_blocks_by_default(
    gate_env, capsys, monkeypatch
):
    insert_history(gate_env, 8)
    gate_env.execute("SELECT pg_stat_statements_reset()")
    code, report = gate_json(capsys)
    assert code == 1
    assert report["evidence"]["readers"]["status"] == "unknown"
    assert "reset" in report["evidence"]["readers"]["reason"]
    monkeypatch.setenv("DQ_GATE__UNKNOWN_BLOCKS", "false")
    code, report = gate_json(capsys)
    assert code == 1  # weaker than the default: it needs accepting
    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    code, report = gate_json(capsys)
    assert code == 0
    assert report["warning"].endswith("unknown_blocks false (default: true)")


def test_without_pg_stat_statements_readers_are_unknown(gate_env, capsys):
    insert_history(gate_env, 8)
    gate_env.execute("DROP EXTENSION pg_stat_statements")
    code, report = gate_json(capsys)
    assert code == 1
    assert "not installed" in report["evidence"]["readers"]["reason"]


def test_markdown_is_ready_for_a_change_ticket(gate_env, capsys):
    insert_history(gate_env, 3)
    code, out, _ = run_cli(capsys, "gate", "--format", "markdown")
    assert code == 4
    assert out.startswith("## dq-monitor gate: drop run_metadata.completed_workers")
    assert "| check | clean since | restarts |" in out
    assert "| readers | **none** |" in out
    code, out, _ = run_cli(capsys, "gate")
    assert "gate: NOT YET" in out


def test_gate_config_error_and_unreachable(monkeypatch, capsys):
    monkeypatch.setenv("DQ_GATE__REQUIRED_CLEAN_PERIOD", "a week")
    code, _, err = run_cli(capsys, "gate")
    assert code == 2
    assert "gate.required_clean_period" in err
    monkeypatch.setenv("DQ_GATE__REQUIRED_CLEAN_PERIOD", "7d")
    monkeypatch.setenv("DQ_DATABASE_URL", "postgresql://x:pw@127.0.0.1:1/none")
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "1s")
    code, _, err = run_cli(capsys, "gate")
    assert code == 3
