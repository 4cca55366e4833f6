"""Start `dq-monitor run` as a real process on loopback and read what it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from checks import REGISTRY
from monitor.demo.embedded import free_port

FAST = """
[schedule]
jitter = "0s"
leader_poll_interval = "500ms"
metrics_refresh_interval = "500ms"
misfire_grace_time = "30s"
"""


def fast_config(interval: str = "1s", extra: str = "") -> str:
    checks = "".join(f'[checks.{name}]\ninterval = "{interval}"\n' for name in REGISTRY)
    return FAST + checks + extra


@dataclass
class RunningService:
    proc: subprocess.Popen[str]
    port: int
    log_path: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def exposition(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body

    def metrics(self) -> dict[str, float]:
        """Every sample as name{labels} -> value (labels sorted, Prometheus style)."""
        samples = {}
        for family in text_string_to_metric_families(self.exposition()):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return samples

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if predicate():
                    return
            except (OSError, AssertionError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise
        return self.proc.returncode


def start_service(
    tmp_path: Path,
    db_url: str | None,
    *,
    config: str | None = None,
    env: dict[str, str] | None = None,
    name: str = "svc",
    wait: bool = True,
) -> RunningService:
    port = free_port()
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(fast_config() if config is None else config)
    log_path = tmp_path / f"{name}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DQ_")},
        "DQ_METRICS_HOST": "127.0.0.1", "DQ_METRICS_PORT": str(port),
        "DQ_CONNECT_TIMEOUT": "2s", **(env or {}),
    }  # fmt: skip
    if db_url is not None:  # None: the databases come from DQ_DATABASES in `env`
        full_env["DQ_DATABASE_URL"] = db_url
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(cfg)],
            env=full_env, stdout=log_file, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    service = RunningService(proc, port, log_path)
    if wait:
        service.wait_for("/healthz", lambda: service.get("/healthz")[0] == 200)
    return service
