"""Small helpers shared by tests: settings from an environment, running the CLI in-process."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest

from alerts import SystemClock
from config import Settings, load_settings
from monitor.cli.main import main

if TYPE_CHECKING:
    from monitor.gate.verdict import GateReport


def settings_for(monkeypatch: pytest.MonkeyPatch, db_url: str, **env: str) -> Settings:
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    for key, value in env.items():
        monkeypatch.setenv(f"DQ_{key.upper()}", value)
    return load_settings()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_cli(capsys, "check", "--format", "json", *args)
    assert out, err
    return code, json.loads(out)


def by_check(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["check"]: r for r in payload["results"]}


def evaluate_gate(at: dt.datetime, **env: str) -> GateReport:
    """One evaluation of the gate at `at` (which samples pg_stat_statements, as the service's
    evaluations do), with DQ_* variables from `env` on top of the environment's."""
    from monitor.app import App
    from monitor.gate.gatekeeper import Gatekeeper

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        app = App.open(load_settings(), clock=FakeClock(at))
    try:
        return Gatekeeper(app.settings, app.store, app.primary, app.clock).evaluate(now=at)
    finally:
        app.close()


def run_checks(settings: Settings, *names: str, full: bool = False) -> dict[str, Any]:
    """Run checks through the real app (state store included) and key results by check."""
    from monitor.app import App

    app = App.open(settings, clock=SystemClock())
    try:
        return {r.check: r for r in app.pipeline.run(names, full=full).results}
    finally:
        app.close()


class FakeClock:
    """An injected clock: time moves only when the test says so (sleep advances it)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime.now(dt.UTC)
        self.start = self.current
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        return self.current

    def monotonic(self) -> float:
        return (self.current - self.start).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)
