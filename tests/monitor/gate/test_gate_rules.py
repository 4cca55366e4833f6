"""The gate's rules come from the recorded history and from floors, not from the settings of the
moment: recorded intervals, the plan's gating checks, weaker settings only when accepted."""

from __future__ import annotations

import datetime as dt
import json
import signal

import psycopg
import pytest

from alerts import Clock
from config import GateSettings, load_settings
from monitor.app import App
from monitor.cli.main import main
from monitor.gate.rules import GateRules, resolve
from tests.factories import seed_race
from tests.helpers import FakeClock, evaluate_gate
from tests.monitor.gate.test_gate import GATING, insert_history
from tests.monitor.service_harness import fast_config, start_service

HOURS = 6  # the history's check interval; a full sweep every fourth run (daily)
GAP_RUNS = (17, 18, 19)  # no runs for 24 h between two daily full sweeps, 3 days ago


@pytest.fixture
def gate_db(monkeypatch, db_url, db):
    """pg_stat_statements installed and sampled before any window; the state schema made."""
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    db.execute("SET pg_stat_statements.track = none")  # seeding the tables is not reading them
    db.execute("CREATE EXTENSION pg_stat_statements")
    # pg_stat_statements as it was when the window began, sampled the way the service does.
    evaluate_gate(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    return db


def record_history(monkeypatch, *, days: int = 8, skip: tuple[int, ...] = ()) -> FakeClock:
    """The real checks, recorded by the real store, every 6 h for `days` (fake time, ending
    now); returns the clock, left at the last run. `skip` leaves those runs out."""
    with monkeypatch.context() as scoped:
        for name in GATING:
            scoped.setenv(f"DQ_CHECKS__{name.upper()}__INTERVAL", f"{HOURS}h")
        settings = load_settings()
    end = dt.datetime.now(dt.UTC)
    clock = FakeClock(end - dt.timedelta(days=days))
    app = App.open(settings, clock=clock, alerts=False)
    try:
        for i in range(days * 24 // HOURS + 1):
            clock.current = end - dt.timedelta(days=days) + dt.timedelta(hours=HOURS * i)
            if i not in skip:
                app.pipeline.run(GATING, full=i % (24 // HOURS) == 0)
    finally:
        app.close()
    return clock


def gate(capsys, clock: Clock | None = None, *args: str) -> tuple[int, dict, str]:
    """Run `gate --format json` and `gate` (text); returns the code, the JSON and the text."""
    code = main(["gate", "--format", "json", *args], clock=clock)
    out, err = capsys.readouterr()
    assert out, err
    text_code = main(["gate", *args], clock=clock)
    text, _ = capsys.readouterr()
    assert text_code == code
    return code, json.loads(out), text


def restarts(report: dict) -> list[dict]:
    return [r for c in report["checks"] for r in c["restarted_by"]]


# --- resolving the rules (pure) --------------------------------------------------------------


def test_without_acceptance_each_rule_is_the_strongest_of_config_defaults_and_service():
    gate = GateSettings(required_clean_period="1d", max_gap_intervals=2, unknown_blocks=False)
    service = GateRules.of(GateSettings(required_clean_period="14d", full_sweep_max_gap="25h",
                                        checks=(*GATING, "stale_partitions")))  # fmt: skip
    resolved = resolve(gate, GATING, service, known_checks=GATING)
    assert resolved.rules.as_json() == {
        "required_clean_period": "14d", "max_gap_intervals": 2, "full_sweep_max_gap": "1d1h",
        "checks": [*GATING, "stale_partitions"], "unknown_blocks": True,
    }  # fmt: skip
    assert resolved.warning is None
    assert resolved.unrecorded == ("stale_partitions",)  # unknown here: it blocks
    assert any("required_clean_period 1d is weaker than the default 7d and the service's last"
               " recorded 14d" in n for n in resolved.notes)  # fmt: skip


def test_accepted_weaker_rules_are_listed_against_whom_they_are_weaker():
    gate = GateSettings(required_clean_period="1d", accept_weaker_settings=True)
    service = GateRules.of(GateSettings(checks=(*GATING, "stale_partitions")))
    resolved = resolve(gate, GATING, service, known_checks=[*GATING, "stale_partitions"])
    assert resolved.rules.required_clean_period == dt.timedelta(days=1)
    assert resolved.warning == (
        "WARNING: evaluated with weaker settings than the defaults and the service: "
        "required_clean_period 1d (default: 7d, service: 7d); checks dashboard_mismatch, "
        "missing_worker_runs, flag_conflict, counter_writes (service: dashboard_mismatch, "
        "missing_worker_runs, flag_conflict, counter_writes, stale_partitions)"
    )


def test_the_plans_gating_checks_stay_even_when_weaker_settings_are_accepted():
    gate = GateSettings(checks=("counter_writes",), accept_weaker_settings=True)
    resolved = resolve(gate, GATING, None, known_checks=GATING)
    assert list(resolved.rules.checks) == ["dashboard_mismatch", "missing_worker_runs",
                                           "flag_conflict", "counter_writes"]  # fmt: skip
    assert resolved.warning is None


# --- intervals come from the runs ------------------------------------------------------------


def test_a_larger_interval_at_evaluation_does_not_hide_a_recorded_gap(
    gate_db, monkeypatch, capsys
):
    clock = record_history(monkeypatch, skip=GAP_RUNS)
    for name in GATING:  # the settings of the moment: runs every 12 h would allow 36 h
        monkeypatch.setenv(f"DQ_CHECKS__{name.upper()}__INTERVAL", "12h")

    code, report, _ = gate(capsys, clock)

    assert (code, report["decision"]) == (4, "not_yet"), report
    gaps = [r for r in restarts(report) if r["kind"] == "gap"]
    assert gaps, report
    assert "no successful run for 1d (allowed 18h" in gaps[0]["detail"]
    assert report["clean_seconds"] == 3 * 86400  # since the full sweep that ended the gap


def test_runs_without_a_recorded_interval_are_judged_by_todays_and_the_report_says_so(
    gate_db, capsys
):
    # Rows as an older dq-monitor wrote them: no interval.
    gate_db.execute("DELETE FROM dq_monitor.check_runs")
    insert_history(gate_db, 8)

    code, report, text = gate(capsys)

    assert code == 0, report
    notes = " ".join(report["settings"]["notes"])
    assert "without a recorded interval" in notes
    assert "today's interval 5m" in notes
    assert "without a recorded interval" in text


# --- floors: what configuration cannot lower -------------------------------------------------


def test_max_gap_intervals_above_the_default_is_not_applied_unless_accepted(
    gate_db, monkeypatch, capsys
):
    clock = record_history(monkeypatch, skip=GAP_RUNS)
    monkeypatch.setenv("DQ_GATE__MAX_GAP_INTERVALS", "1000")

    code, report, text = gate(capsys, clock)

    assert code == 4, report
    assert report["settings"]["max_gap_intervals"] == 3
    assert "max_gap_intervals 1000" in " ".join(report["settings"]["notes"])
    assert not text.startswith("WARNING")

    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    code, report, text = gate(capsys, clock)

    assert code == 0, report
    assert report["settings"]["max_gap_intervals"] == 1000
    assert text.splitlines()[0] == (
        "WARNING: evaluated with weaker settings than the defaults: "
        "max_gap_intervals 1000 (default: 3)"
    )
    assert report["warning"] == text.splitlines()[0]


def test_a_zero_clean_period_seconds_after_a_violation_is_not_open_unless_accepted(
    gate_db, monkeypatch, capsys
):
    seed_race(gate_db, "race")
    assert main(["check"]) == 1
    gate_db.execute("DELETE FROM worker_runs WHERE run_id = 'race'")
    gate_db.execute("DELETE FROM run_metadata WHERE run_id = 'race'")
    assert main(["check", "--full"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("DQ_GATE__REQUIRED_CLEAN_PERIOD", "0s")

    code, report, text = gate(capsys)

    assert (code, report["decision"]) == (4, "not_yet"), report
    assert report["required_clean_period"] == "7d"
    assert "required_clean_period 0s" in " ".join(report["settings"]["notes"])
    assert text.splitlines()[0].startswith("gate: NOT YET: clean for")

    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    code, report, text = gate(capsys)

    assert code == 0, report
    warning = (
        "WARNING: evaluated with weaker settings than the defaults: "
        "required_clean_period 0s (default: 7d)"
    )
    assert text.splitlines()[0] == warning
    assert report["warning"] == warning
    assert report["settings"]["weaker"] == ["required_clean_period 0s (default: 7d)"]


def test_gate_checks_cannot_leave_out_the_plans_gating_checks(gate_db, monkeypatch, capsys):
    insert_history(gate_db, 8)
    seed_race(gate_db, "race")
    assert main(["check", "--check", "dashboard_mismatch"]) == 1
    capsys.readouterr()
    monkeypatch.setenv("DQ_GATE__CHECKS", '["counter_writes"]')

    code, report, _ = gate(capsys)

    assert (code, report["decision"]) == (1, "blocked"), report
    assert [c["check"] for c in report["checks"]] == GATING
    assert report["blockers"][0]["check"] == "dashboard_mismatch"
    assert report["settings"]["checks"] == GATING
    assert "migration 005 gates on" in " ".join(report["settings"]["notes"])


def test_unknown_blocks_false_is_weaker(gate_db, monkeypatch, capsys):
    insert_history(gate_db, 8)
    gate_db.execute("SELECT pg_stat_statements_reset()")
    monkeypatch.setenv("DQ_GATE__UNKNOWN_BLOCKS", "false")

    code, report, text = gate(capsys)
    assert code == 1
    assert report["evidence"]["readers"]["status"] == "unknown"
    assert report["settings"]["unknown_blocks"] is True

    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    code, report, text = gate(capsys)
    assert code == 0
    assert text.splitlines()[0] == (
        "WARNING: evaluated with weaker settings than the defaults: "
        "unknown_blocks false (default: true)"
    )


# --- the settings are evidence ---------------------------------------------------------------


def test_the_settings_are_part_of_the_evidence_hash_and_every_format(
    gate_db, monkeypatch, capsys
):
    insert_history(gate_db, 8)
    code, default, _ = gate(capsys)
    assert code == 0

    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    monkeypatch.setenv("DQ_GATE__MAX_GAP_INTERVALS", "4")
    code, weaker, _ = gate(capsys)
    assert code == 0

    assert default["evidence_hash"] != weaker["evidence_hash"]
    assert default["settings"] == {
        "required_clean_period": "7d", "max_gap_intervals": 3, "full_sweep_max_gap": "1d2h",
        "checks": GATING, "unknown_blocks": True, "accept_weaker_settings": False,
        "weaker": [], "notes": default["settings"]["notes"],
    }  # fmt: skip
    assert weaker["settings"]["weaker"] == ["max_gap_intervals 4 (default: 3)"]
    code = main(["gate", "--format", "markdown"])
    out, _ = capsys.readouterr()
    first, *rest = out.splitlines()
    assert first == (
        "> **WARNING: evaluated with weaker settings than the defaults: "
        "max_gap_intervals 4 (default: 3)**"
    )
    assert "| max gap between successful runs | 4 intervals |" in rest


def test_the_service_records_its_settings_and_a_weaker_evaluation_says_so(
    tmp_path, db_url, gate_db, monkeypatch, capsys
):
    config = fast_config(
        extra='[gate]\nrequired_clean_period = "14d"\nevaluate_interval = "500ms"\n'
    )
    svc = start_service(tmp_path, db_url, config=config)
    try:
        svc.wait_for("the gate's settings", lambda: _service_gate(db_url).get("settings"))
    finally:
        svc.stop(signal.SIGKILL)
    recorded = _service_gate(db_url)["settings"]
    assert recorded["required_clean_period"] == "14d"
    assert recorded["checks"] == GATING

    _, report, text = gate(capsys)  # 7d by default: the service's 14d applies
    assert report["settings"]["required_clean_period"] == "14d"
    assert not text.startswith("WARNING")
    assert "the service's last recorded" in " ".join(report["settings"]["notes"])

    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    _, report, text = gate(capsys)
    assert report["settings"]["required_clean_period"] == "7d"
    assert text.splitlines()[0] == (
        "WARNING: evaluated with weaker settings than the service: "
        "required_clean_period 7d (service: 14d)"
    )


def _service_gate(db_url: str) -> dict:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT value FROM dq_monitor.service_state WHERE key = 'gate'")
        found = row.fetchone()
    return found[0] if found else {}
