"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback, for alertmanager routes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pytest_httpserver import HTTPServer

from monitor.demo.embedded import free_port

BINARY = "prometheus-alertmanager"
#: Where the `alertmanager` fixture's Alertmanager sends its own webhook notifications.
HOOK = "/am-receiver"
T = TypeVar("T")


def binary() -> str:
    path = shutil.which(BINARY) or shutil.which("alertmanager")
    if path is None:
        pytest.fail(
            "prometheus-alertmanager is not installed; install Debian's package: "
            "apt-get install prometheus-alertmanager"
        )
    return path


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    """Poll `probe` until it returns something other than None (or falsy), with a deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Alertmanager:
    """One Alertmanager without clustering, routing every alert, grouped by check, to one
    webhook receiver (send_resolved on) after short group_wait and group_interval."""

    def __init__(self, workdir: Path, receiver_url: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(
            "route:\n  receiver: hook\n  group_by: ['check']\n  group_wait: 1s\n"
            "  group_interval: 1s\n  repeat_interval: 1h\n"
            "receivers:\n  - name: hook\n    webhook_configs:\n"
            f"      - url: {json.dumps(receiver_url)}\n        send_resolved: true\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        log = (self.workdir / "alertmanager.log").open("ab")
        self.process = subprocess.Popen(
            [binary(), f"--config.file={self.config}",
             f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_for(f"Alertmanager on port {self.port} to be ready", self._ready)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def log(self) -> str:
        return (self.workdir / "alertmanager.log").read_text(errors="replace")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"Alertmanager exited:\n{self.log()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.load(response)

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts (resolved ones are not listed by /api/v2/alerts)."""
        found: list[dict[str, Any]] = self.get("/api/v2/alerts")
        return found

    def alert(self, alertname: str, check: str) -> dict[str, Any] | None:
        return next((a for a in self.alerts() if a["labels"].get("alertname") == alertname
                     and a["labels"].get("check") == check), None)  # fmt: skip

    def metric(self, name_and_labels: str) -> float | None:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name_and_labels + " "):
                    return float(line.rsplit(" ", 1)[1])
        return None


@pytest.fixture
def alertmanager(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Alertmanager]:
    """A started Alertmanager whose one receiver is the test's `httpserver` at HOOK."""
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    server = Alertmanager(tmp_path / "am", httpserver.url_for(HOOK)).start()
    yield server
    server.stop()
