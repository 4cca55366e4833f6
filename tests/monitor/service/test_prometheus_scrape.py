"""A real Prometheus scrapes a running `dq-monitor run`; promtool accepts the exposition."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from monitor.demo.embedded import free_port
from tests.factories import healthy_run, seed_race
from tests.monitor.service_harness import start_service


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed; install Debian's package: apt-get install prometheus"
        )
    return path


@contextmanager
def running_prometheus(tmp_path: Path, target_port: int) -> Iterator[int]:
    """A real Prometheus on loopback scraping 127.0.0.1:`target_port` every second (job
    dq-monitor); yields the port of its API."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: dq-monitor\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    with (tmp_path / "prometheus.log").open("w") as log:
        prometheus = subprocess.Popen(
            [tool("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield port
        finally:
            prometheus.terminate()
            prometheus.wait(15)


@pytest.fixture
def service(tmp_path, db_url, db):
    healthy_run(db, "fine")
    seed_race(db, "race1")
    seed_race(db, "race2")
    svc = start_service(tmp_path, db_url)
    key = 'dq_check_violations{check="dashboard_mismatch",database="default"}'
    svc.wait_for("the first results", lambda: svc.metrics()[key] == 2)
    yield svc
    svc.stop(signal.SIGKILL)


def test_promtool_accepts_the_exposition(service):
    result = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=service.exposition(), text=True,
        capture_output=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_prometheus_scrapes_the_violations_of_a_seeded_defect(tmp_path, service):
    with running_prometheus(tmp_path, service.port) as port:
        value = _wait_for_value(
            port, 'dq_check_violations{database="default", check="dashboard_mismatch"}'
        )
        assert value == 2
        assert (
            _wait_for_value(
                port, 'dq_check_violations{database="default", check="missing_worker_runs"}'
            )
            == 2
        )
        assert (
            _wait_for_value(port, 'dq_check_violations{database="default", check="flag_conflict"}')
            == 0
        )
        assert _wait_for_value(port, 'up{job="dq-monitor"}') == 1


def _wait_for_value(port: int, query: str, timeout: float = 30) -> float:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = json.load(response)
            if last["status"] == "success" and last["data"]["result"]:
                return float(last["data"]["result"][0]["value"][1])
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never answered {query}: {last}")
