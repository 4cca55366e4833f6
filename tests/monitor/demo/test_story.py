"""`dq-monitor demo --gate-period`: the release manager's story, end to end as a process."""

from __future__ import annotations

import re

import pytest

from config import parse_duration
from monitor.demo.embedded import free_port
from monitor.demo.story import retire_after

from .test_demo import demo

GATE_LINE = re.compile(r"^\[demo\] gate after (\S+): (BLOCKED|NOT YET|OPEN)\b", re.MULTILINE)


@pytest.mark.slow
def test_a_short_gate_period_goes_from_blocked_to_not_yet_to_open_then_migrates():
    period = parse_duration("40s")
    proc = demo("--gate-period", "40s", "--metrics-port", str(free_port()))
    try:
        out, _ = proc.communicate(timeout=300)  # about 1m45s when the machine is not busy
    finally:
        proc.kill()
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    matches = list(GATE_LINE.finditer(out))
    states = [(parse_duration(m.group(1)), m.group(2)) for m in matches]
    # Each change printed once, in this order, ending open.
    assert [s for _, s in states] == ["BLOCKED", "NOT YET", "OPEN"], out[-4000:]
    # Weaker than the default on purpose, and said so.
    assert ("[demo] WARNING: evaluated with weaker settings than the defaults: "
            "required_clean_period 40s (default: 7d)") in out  # fmt: skip
    # Opened by evidence, not by the clock alone: the readers' coverage starts at the
    # statistics reset when the old build retires, and must last the whole period.
    retired = out.index("[demo] the old build is retired")
    reset = out.index("[demo] pg_stat_statements reset")
    assert matches[0].start() < retired < reset < matches[1].start()
    opened_at = states[-1][0]
    assert opened_at >= retire_after(period) + period, out[-4000:]
    # Then the migration, applied and rolled back, in that order.
    applied = out.index("[demo]   migrate: applied: dropped completed_workers, failed_workers")
    rolled = out.index("[demo]   migrate: rolled back: re-added completed_workers, failed_workers")
    assert matches[2].start() < applied < rolled
    assert "[demo] done: the gate opened, the counters were dropped and restored" in out
    assert "[demo] finished after" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [("soon", "--gate-period: invalid duration 'soon'"),
     ("0s", "--gate-period: must be longer than 0s, e.g. 2m")],
)  # fmt: skip
def test_bad_gate_period_is_a_usage_error(value: str, message: str):
    proc = demo("--gate-period", value)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert message in out
