"""Start-up: what `python -m monitor` imports for --help and for a `check` (in a fresh process)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.factories import seed_race

ROOT = Path(__file__).resolve().parents[3]
# Runs the real entry point (monitor/__main__.py) and reports sys.modules as it exits.
WRAPPER = """
import atexit, json, runpy, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.__stderr__))
sys.argv = ["dq-monitor", *sys.argv[1:]]
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""
HEAVY = ("psycopg", "psycopg_pool", "httpx", "apscheduler", "prometheus_client", "pydantic")
NOT_FOR_CHECK = ("apscheduler", "prometheus_client", "httpx", "psycopg_pool", "wsgiref")


def imported(*argv: str, env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    """Exit code, top-level packages imported, and stdout of `python -m monitor ARGV`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DQ_")}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv],
        cwd=ROOT, env={**clean, **(env or {})}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.startswith("MODULES ")]
    assert len(lines) == 1, done.stderr
    modules = json.loads(lines[0].removeprefix("MODULES "))
    return done.returncode, {name.split(".")[0] for name in modules}, done.stdout


def test_the_wrapper_sees_what_a_command_imports():
    """The listing is real: `config show` needs pydantic, and the wrapper reports it."""
    code, modules, out = imported("config", "show", env={"DQ_DATABASE_URL": "postgresql://x"})
    assert code == 0, out
    assert {"pydantic", "config", "monitor"} <= modules


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        *(
            [*command, "--help"]
            for command in (
                ["check"],
                ["run"],
                ["gate"],
                ["migrate"],
                ["doctor"],
                ["demo"],
                ["config"],
                ["config", "check"],
                ["config", "show"],
                ["config", "reference"],
                ["silence", "add"],
                ["silence", "list"],
                ["alerts", "test"],
                ["state"],
                ["state", "prune"],
            )
        ),
    ],
    ids=" ".join,
)
def test_help_loads_no_database_driver_http_client_scheduler_or_settings_models(argv):
    code, modules, out = imported(*argv)
    assert code == 0
    assert "dq-monitor" in out
    assert sorted(modules & set(HEAVY)) == []


def test_an_incremental_check_loads_no_scheduler_metrics_http_server_or_http_client(
    db_url, tmp_path
):
    env = {"DQ_DATABASE_URL": db_url}
    code, modules, out = imported("check", "--full", env=env)
    assert code == 0, out
    with psycopg.connect(db_url, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]
        # Settled (settle_time 2m) and inside the next window (incremental_overlap 5m).
        seed_race(conn, "run-startup", at=now - dt.timedelta(minutes=3))
    code, modules, out = imported("check", env=env)
    assert code == 1, out  # the race was found, incrementally ...
    assert "dashboard_mismatch" in out
    assert {"psycopg", "pydantic", "checks", "alerts"} <= modules
    # ... without the service's libraries, and with no route configured, without httpx.
    assert sorted(modules & set(NOT_FOR_CHECK)) == []


def test_a_configured_webhook_route_loads_httpx(tmp_path):
    """The other side of the test above: httpx does load once a route sends HTTP (its URL is
    checked as httpx will read it)."""
    config = tmp_path / "dq.toml"
    config.write_text(
        '[[alerts.routes]]\nname = "ops"\ntype = "webhook"\nurl = "https://h.example/x"\n'
    )
    code, modules, out = imported(
        "config", "check", env={"DQ_DATABASE_URL": "postgresql://x", "DQ_CONFIG": str(config)}
    )
    assert code == 0, out
    assert "httpx" in modules
