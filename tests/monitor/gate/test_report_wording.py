"""The gate report's one line per check about what restarted its clean period, and its counts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from monitor.gate.report import render_json, render_markdown, render_text
from monitor.gate.verdict import Decision, GateReport, RunRecord, analyse
from tests.monitor.gate.test_gate import FULL_GAP, GAP, NOW, history

WEEK = dt.timedelta(days=7)


def _bad(runs: list[RunRecord], i: int, violations: int, job_runs: tuple[str, ...]) -> None:
    r = runs[i]
    runs[i] = RunRecord(r.id, r.check, r.finished_at, "incremental", "violation", violations,
                        tuple({"run_id": j} for j in job_runs))  # fmt: skip


def _report(runs: list[RunRecord]) -> GateReport:
    s = analyse("flag_conflict", runs, now=NOW, horizon=NOW - dt.timedelta(days=30),
                max_gap=GAP, full_gap=FULL_GAP)  # fmt: skip
    assert s.blockers == []
    return GateReport(plan="drop_counter_columns", now=NOW, required=WEEK,
                      decision=Decision.NOT_YET, clean_since=s.start, streaks=[s], blockers=[],
                      evidence={}, silences=[])  # fmt: skip


def _when(runs: list[RunRecord], i: int) -> str:
    return runs[i].finished_at.strftime("%Y-%m-%d %H:%M UTC")


def _check_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start, end = lines.index("checks:"), lines.index("evidence:")
    return lines[start + 1 : end]


def test_no_restart_adds_no_line_and_markdown_says_so():
    report = _report(history(8))
    assert _check_lines(render_text(report))[1:] == []
    assert "| `flag_conflict` |" in render_markdown(report)
    assert "| not restarted in the window |" in render_markdown(report)


def test_one_restart_reads_once_with_its_count_and_runs():
    runs = history(8)
    _bad(runs, 500, 1, ("r9",))
    line = (f"restarted once in the window, by 1 violation at {_when(runs, 500)} "
            "(check run 500); job run r9")
    assert _check_lines(render_text(_report(runs)))[1] == f"      {line}"
    assert f"| {line} |" in render_markdown(_report(runs))


def test_two_restarts_of_one_kind_are_one_line_naming_the_last():
    runs = history(8)
    _bad(runs, 500, 1, ("r9",))
    _bad(runs, 700, 2, ("r10", "r11"))
    lines = _check_lines(render_text(_report(runs)))
    assert lines[1:] == [
        f"      restarted 2 times in the window, last by 2 violations at {_when(runs, 700)} "
        "(check run 700); job runs r10, r11"
    ]
    # The JSON keeps its list of the last restarts, one object each.
    body = json.loads(render_json(_report(runs)))
    assert [r["runs"] for r in body["checks"][0]["restarted_by"]] == [[500], [700]]


def test_different_kinds_are_summarised():
    runs = history(8)
    _bad(runs, 500, 3, ("r1", "r2"))
    _bad(runs, 600, 1, ("r3",))
    runs = [r for r in runs if not (1000 <= r.id < 1010)]  # 50 minutes without a run
    report = _report(runs)
    (line,) = _check_lines(render_text(report))[1:]
    assert line.startswith(
        "      restarted 3 times in the window (2 by violations, 1 by a gap), last by a gap: "
        "no successful run for 55m"
    )
    assert line.endswith("(check run 1010)")
    assert "restarted 3 times in the window (2 by violations, 1 by a gap)" in render_markdown(
        report
    )


@pytest.mark.parametrize(("n", "text"), [(0, "0 violations"), (1, "1 violation"),
                                         (2, "2 violations")])  # fmt: skip
def test_the_restart_counts_violations_right(n, text):
    runs = history(8)
    _bad(runs, 500, n, ())
    (line,) = _check_lines(render_text(_report(runs)))[1:]
    assert f"by {text} at" in line


@pytest.mark.parametrize(("k", "cell"), [(1, "1 interval"), (3, "3 intervals")])
def test_the_settings_table_counts_intervals(k, cell):
    report = _report(history(8))
    report.settings = {"required_clean_period": "7d", "max_gap_intervals": k,
                       "full_sweep_max_gap": "1d", "unknown_blocks": True,
                       "checks": ["flag_conflict"], "accept_weaker_settings": False}  # fmt: skip
    assert f"| max gap between successful runs | {cell} |" in render_markdown(report)
