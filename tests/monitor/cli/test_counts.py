"""Counts in what the CLI prints agree with their nouns: 0, 1 and 2 of each."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from checks import CheckResult, Mode, Status
from config import Severity
from monitor.cli.doctor_commands import render_text
from monitor.cli.output import render_table
from monitor.doctor import DoctorItem, ItemStatus
from tests.helpers import run_cli

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
DB_URL = "postgresql://dq@db.example.com:5432/jobs"


def result(violations: int) -> CheckResult:
    status = Status.VIOLATION if violations else Status.OK
    return CheckResult(
        check="dashboard_mismatch", status=status, severity=Severity.CRITICAL,
        violations=violations, samples=tuple({"run_id": f"r{i}"} for i in range(violations)),
        duration_seconds=0.1, mode=Mode.FULL, started_at=T0, finished_at=T0,
        description="counters disagree",
    )  # fmt: skip


@pytest.mark.parametrize(("n", "words"), [(1, "1 violation"), (2, "2 violations")])
def test_the_check_table_counts_violations(n, words):
    table = render_table([result(n)])
    assert f"\ndashboard_mismatch ({words}): counters disagree" in table


def test_no_violation_prints_no_count_line():
    assert "violation" not in render_table([result(0)]).split("\n", 1)[1]


@pytest.mark.parametrize(
    ("routes", "databases", "summary"),
    [
        (0, 1, "0 alert routes"),
        (1, 1, "1 alert route"),
        (2, 2, "2 alert routes, 2 databases"),
    ],
)
def test_config_check_counts_routes_and_databases(routes, databases, summary, monkeypatch, capsys):
    monkeypatch.setenv("DQ_CHECKS__CONSOLIDATION_MISSED__ENABLED", "false")
    monkeypatch.setenv("DQ_CHECKS__PREMATURE_CONSOLIDATION__ENABLED", "false")
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps(
        [{"name": f"r{i}", "type": "console"} for i in range(routes)]
    ))  # fmt: skip
    if databases > 1:
        monkeypatch.setenv("DQ_DATABASES", json.dumps(
            [{"name": f"d{i}", "url": f"{DB_URL}{i}"} for i in range(databases)]
        ))  # fmt: skip
    else:
        monkeypatch.setenv("DQ_DATABASE_URL", DB_URL)
    code, out, err = run_cli(capsys, "config", "check")
    assert (code, err) == (0, "")
    assert out == f"configuration ok: 5 checks enabled, {summary}\n"


def test_config_check_counts_one_check(monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", DB_URL)
    for name in ("dashboard_mismatch", "missing_worker_runs", "flag_conflict", "stale_partitions",
                 "consolidation_missed", "premature_consolidation"):  # fmt: skip
        monkeypatch.setenv(f"DQ_CHECKS__{name.upper()}__ENABLED", "false")
    code, out, _ = run_cli(capsys, "config", "check")
    assert (code, out) == (0, "configuration ok: 1 check enabled, 0 alert routes\n")


@pytest.mark.parametrize(("n", "summary"), [(0, "doctor: all ok"), (1, "doctor: 1 problem"),
                                            (2, "doctor: 2 problems")])  # fmt: skip
def test_the_doctor_counts_its_problems(n, summary):
    items = [DoctorItem("database.connection", ItemStatus.OK, "fine")]
    items += [DoctorItem(f"database.p{i}", ItemStatus.PROBLEM, "bad", "fix it") for i in range(n)]
    assert render_text(items, routes_checked=True).splitlines()[-1] == summary
