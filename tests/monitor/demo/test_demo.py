"""`dq-monitor demo` runs for real: an embedded database, the simulator and the service."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from checks import REGISTRY
from monitor.demo.embedded import free_port


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DQ_")}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "demo", *args], env={**clean, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def violations(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.labels["check"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "dq_check_violations"
        for s in family.samples
    }


@pytest.mark.slow
def test_demo_for_30_seconds_shows_every_seeded_defect():
    port = free_port()
    proc = demo("--duration", "30s", "--metrics-port", str(port))
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                for check, value in violations(port).items():
                    seen[check] = max(seen.get(check, 0), value)
            except OSError:
                pass
            time.sleep(1)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    for check in REGISTRY:
        assert seen.get(check, 0) >= 1, (check, seen, out[-3000:])
    assert "[CRITICAL] dashboard_mismatch is failing" in out
    assert "[demo] finished after" in out
    assert "Traceback" not in out


@pytest.mark.slow
def test_keep_leaves_the_database_for_inspection():
    port = free_port()
    proc = demo("--duration", "6s", "--metrics-port", str(port), "--keep")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    url = re.search(r"database kept for inspection: (\S+)", out)
    stop = re.search(r"stop it with: (.+)", out)
    assert url, out
    assert stop, out
    words = shlex.split(stop.group(1))
    data_dir = Path(words[words.index("-D") + 1])
    try:
        with psycopg.connect(url.group(1)) as conn:
            assert conn.execute("SELECT count(*) FROM run_metadata").fetchone()[0] > 0
        if os.geteuid() == 0:
            assert words[0].endswith("runuser"), words
        # The command exactly as printed, as the user who ran the demo.
        stopped = subprocess.run(
            ["bash", "-c", stop.group(1)], capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.group(1), connect_timeout=5).close()
    finally:
        if (data_dir / "postmaster.pid").exists():  # an assertion above failed: stop it anyway
            pg_ctl = words[words.index("-D") - 1]
            owner = data_dir.stat()
            as_owner = (
                {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": [], "cwd": "/"}
                if os.geteuid() == 0 else {}
            )  # fmt: skip
            subprocess.run(
                [pg_ctl, "-D", str(data_dir), "stop", "-m", "immediate"], capture_output=True,
                check=False, **as_owner,
            )  # fmt: skip
        if data_dir.parent.name.startswith("dq-pg-"):  # the demo's own directory, copy included
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_an_explicit_metrics_port_in_use_is_a_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = demo("--metrics-port", str(port))
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert out.splitlines() == [
        f"dq-monitor: error: --metrics-port {port}: cannot serve on 127.0.0.1:{port} (Address "
        "already in use); choose another port, or leave out --metrics-port to let the demo pick "
        "a free one"
    ]


@pytest.mark.slow
def test_a_configured_port_in_use_gives_way_to_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = demo("--duration", "3s", env={"DQ_METRICS_PORT": str(port)})
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    notice = re.search(
        rf"\[demo\] port {port} \(metrics_port\) is not available \(Address already in use\), "
        r"so the demo serves on port (\d+) instead; choose one with --metrics-port", out,
    )  # fmt: skip
    assert notice, out
    assert f"metrics on http://127.0.0.1:{notice.group(1)}/metrics" in out
    assert "[demo] finished after" in out


def test_bad_duration_is_a_usage_error():
    proc = demo("--duration", "soon")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--duration: invalid duration 'soon'" in out
