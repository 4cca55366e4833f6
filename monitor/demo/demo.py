"""`dq-monitor demo`: an embedded PostgreSQL, a simulated job system and the real service."""

from __future__ import annotations

import datetime as dt
import socket
import sys
import threading
from typing import Any

import psycopg

from alerts import Clock
from checks import REGISTRY, reference_schema
from config import ConfigError, Settings, format_duration, load_settings
from monitor.demo.embedded import EmbeddedPostgres, free_port
from monitor.demo.simulator import Simulator
from monitor.demo.story import GateStory, remember_writes
from monitor.service import Periodic, Service


def demo_settings(
    base: Settings, url: str, metrics_port: int, gate_period: dt.timedelta | None = None
) -> Settings:
    """The user's settings (routes included) with the demo's database and quick timings.

    With `gate_period`, the gate requires that clean period: shorter than the default, so
    accepted only with gate.accept_weaker_settings (every report then says so).
    """
    checks: dict[str, Any] = {name: {"interval": "3s"} for name in REGISTRY}
    checks["stale_partitions"]["threshold"] = "10s"
    checks["counter_writes"]["remember"] = "2m"
    checks["consolidation_missed"]["threshold"] = "5s"
    gate: dict[str, Any] = {"evaluate_interval": "10s"}
    if gate_period is not None:
        checks["counter_writes"]["remember"] = remember_writes(gate_period)
        gate |= {"required_clean_period": gate_period, "accept_weaker_settings": True}
    routes = [{"name": "console", "type": "console", "min_severity": "info"}]
    routes += [r.model_dump() for r in base.alerts.routes if r.name != "console"]
    overrides: dict[str, Any] = {
        "database_url": url, "state_database_url": url, "metrics_host": "127.0.0.1",
        "metrics_port": metrics_port, "settle_time": "2s", "incremental_overlap": "5s",
        "checks": checks,
        "schedule": {"jitter": "0s", "full_sweep_interval": "1m", "leader_poll_interval": "1s",
                     "metrics_refresh_interval": "1s"},
        "alerts": {"routes": routes, "repeat_interval": "2m", "delivery_interval": "1s",
                   "warning_after": 1},
        "gate": gate,
    }  # fmt: skip
    return type(base)(**overrides)


class Demo:
    """Runs until Ctrl-C or --duration; prints alerts and a status line as it goes.

    With a gate period (--gate-period) it also tells the release manager's story
    (monitor/demo/story.py) and ends on its own once the migration is rolled back.
    """

    def __init__(self, config: str | None, duration: dt.timedelta | None,
                 metrics_port: int | None, keep: bool, clock: Clock, *,
                 gate_period: dt.timedelta | None = None) -> None:  # fmt: skip
        """metrics_port is --metrics-port (None: the settings' metrics_port, or a free one)."""
        self.base = load_settings(config)
        self.clock = clock
        self.duration = duration
        self.gate_period = gate_period
        self.requested_port = metrics_port
        self.metrics_port = self.base.metrics_port
        self.keep = keep
        self.tty = sys.stdout.isatty()

    def run(self) -> int:
        """Run the demo; returns the exit code.

        Raises ConfigError when --metrics-port is taken or the embedded PostgreSQL fails.
        """
        self.metrics_port = self._choose_port()
        say("starting an embedded PostgreSQL (the job system's database)...")
        server = EmbeddedPostgres()
        try:
            server.init()
            server.start()
        except ConfigError:
            server.cleanup()
            raise
        except (RuntimeError, OSError) as exc:
            server.cleanup()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"the embedded PostgreSQL did not start: {first}") from None
        started = self.clock.monotonic()
        try:
            return self._run(server, started)
        finally:
            if self.keep:
                say(f"database kept for inspection: {server.url('jobs')}")
                say(f"  stop it with: {server.stop_command()}")
            else:
                server.cleanup()

    def _choose_port(self) -> int:
        """--metrics-port if free; else the settings' port, or a free one when that is taken."""
        if self.requested_port is not None:
            problem = _bind_problem(self.requested_port)
            if problem is not None:
                raise ConfigError(
                    f"--metrics-port {self.requested_port}: cannot serve on 127.0.0.1:"
                    f"{self.requested_port} ({problem}); choose another port, or leave out "
                    "--metrics-port to let the demo pick a free one"
                )
            return self.requested_port
        port = self.base.metrics_port
        problem = _bind_problem(port)
        if problem is None:
            return port
        free = free_port()
        say(f"port {port} (metrics_port) is not available ({problem}), so the demo serves on "
            f"port {free} instead; choose one with --metrics-port")  # fmt: skip
        return free

    def _run(self, server: EmbeddedPostgres, started: float) -> int:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE jobs")
        url = server.url("jobs")
        with psycopg.connect(url, autocommit=True) as owner:  # the server preloads its library
            owner.execute("CREATE EXTENSION pg_stat_statements")
        sim_conn = psycopg.connect(url, autocommit=True, application_name="job-system-simulator")
        sim_conn.execute(reference_schema())
        simulator = Simulator(sim_conn)
        settings = demo_settings(self.base, url, self.metrics_port, self.gate_period)
        service = Service(settings, self.clock)
        say(f"simulating the job system; metrics on http://127.0.0.1:{self.metrics_port}/metrics,"
            f" status page on http://127.0.0.1:{self.metrics_port}/")  # fmt: skip
        say("watch for: dashboard_mismatch and missing_worker_runs (the retry race), "
            "stale_partitions (a dead worker), counter_writes (an old build), "
            "flag_conflict")  # fmt: skip
        ticker = Periodic("simulator", 1.0, simulator.tick)
        status = Periodic("status", 5.0, lambda: self._status(service, simulator, started))
        timer = None
        if self.duration is not None:
            timer = threading.Timer(self.duration.total_seconds(), service.stop)
            timer.daemon = True
            timer.start()
        story, teller = None, None
        if self.gate_period is not None:
            story = GateStory(settings, self.clock, simulator, url,
                              pause_checks=service.scheduler.pause, say=say)  # fmt: skip
            teller = threading.Thread(target=story.run, args=(started, service.stop),
                                      name="gate-story", daemon=True)  # fmt: skip
        ticker.start()
        status.start()
        if teller is not None:
            teller.start()
        try:
            code = service.run()
        finally:
            for thread in (ticker, status):
                thread.stop()
            if story is not None and teller is not None:
                story.stop()
                teller.join(30)
            if timer is not None:
                timer.cancel()
            ticker.join(5)
            sim_conn.close()
        self._status(service, simulator, started, final=True)
        if story is not None and story.code is not None:
            return story.code
        return code

    def _status(
        self, service: Service, sim: Simulator, started: float, final: bool = False
    ) -> None:
        stats = service.cache.snapshot.stats
        found = " ".join(
            f"{name}={row.last_violations}" for name, row in sorted(stats.checks.items())
        )
        sent = sum(r.sent_total for r in stats.delivery.routes.values())
        elapsed = format_duration(dt.timedelta(seconds=round(self.clock.monotonic() - started)))
        prefix = "finished after" if final else "status at"
        say(f"{prefix} {elapsed}: {sim.started} runs simulated | violations: {found or '-'} | "
            f"alerts delivered: {sent}")  # fmt: skip


def _bind_problem(port: int) -> str | None:
    """Why the service could not bind 127.0.0.1:port now (None: it could).

    Binds with SO_REUSEADDR, as the service's HTTP server does. The port is free at this
    moment only; if another process takes it before the service binds, the service's own
    error says so.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
        return None


def say(line: str) -> None:
    print(f"[demo] {line}", flush=True)
