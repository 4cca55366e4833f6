"""Benchmark `dq-monitor run` with 20 configured checks: steady-state RSS and scrape latency.

Targets (issue 3): RSS at most 80 MB; a /metrics scrape served in at most 5 ms (median).
Scrapes are timed per variant a scraper negotiates: the text format (no Accept header, what
curl and older scrapers get), OpenMetrics (the Accept header Prometheus 2.x sends first), and
OpenMetrics gzipped (Prometheus also sends Accept-Encoding: gzip).
Usage: python bench/service_bench.py [--checks 20] [--scrapes 2000] [--settle 45]
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts import SystemClock  # noqa: E402
from checks import REGISTRY, reference_schema  # noqa: E402
from monitor.demo.embedded import EmbeddedPostgres, free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def config(checks: int) -> str:
    builtin = REGISTRY.names
    lines = ['[schedule]\njitter = "0s"\n']
    lines += [f'[checks.{name}]\ninterval = "5s"\n' for name in builtin]
    for i in range(checks - len(builtin)):
        lines.append(
            f'[[checks.custom]]\nname = "custom_{i:02d}"\ninterval = "5s"\n'
            f"sql = \"SELECT run_id FROM run_metadata WHERE status = 'broken_{i}'\"\n"
        )
    return "\n".join(lines)


VARIANTS = {
    "text": {},
    "openmetrics": {"Accept": "application/openmetrics-text;version=1.0.0,"
                    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"},
    "openmetrics+gzip": {"Accept": "application/openmetrics-text;version=1.0.0,"
                         "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                         "Accept-Encoding": "gzip"},
}  # fmt: skip


def timed_get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> float:
    start = time.perf_counter()
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.status
    return elapsed


def uncached_render_ms(checks: int, rounds: int = 200) -> float:
    """What a scrape would cost if the exposition were rendered every time."""
    from prometheus_client import generate_latest

    from config import load_settings
    from monitor.service.metrics import StatsCache, build_registry, one_database

    custom = ",".join(f'{{"name": "c{i:02d}", "sql": "SELECT 1"}}' for i in range(checks - 5))
    os.environ["DQ_CHECKS__CUSTOM"] = f"[{custom}]"
    cache = StatsCache(None, SystemClock())  # type: ignore[arg-type]
    settings = load_settings()
    registry = build_registry(settings, one_database(settings, cache, lambda: True))
    start = time.perf_counter()
    for _ in range(rounds):
        generate_latest(registry)
    return (time.perf_counter() - start) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=45.0, help="seconds before measuring")
    args = parser.parse_args()

    server = EmbeddedPostgres()
    server.init()
    server.start()
    tmp = Path(tempfile.mkdtemp(prefix="dq-bench-"))
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(reference_schema())  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO run_metadata (run_id) SELECT 'r' || g FROM generate_series(1, 200) g"
            )
        (tmp / "bench.toml").write_text(config(args.checks))
        port = free_port()
        env = {**os.environ, "DQ_DATABASE_URL": server.url(), "DQ_METRICS_PORT": str(port),
               "DQ_METRICS_HOST": "127.0.0.1", "DQ_LOG_LEVEL": "WARNING"}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(tmp / "bench.toml")],
            env=env, stdout=subprocess.DEVNULL, stderr=(tmp / "svc.log").open("w"),
        )  # fmt: skip
        print(f"started dq-monitor run (pid {proc.pid}) with {args.checks} checks every 5s",
              flush=True)  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                timed_get(conn, "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                time.sleep(0.2)
        samples = []
        end = time.monotonic() + args.settle
        while time.monotonic() < end:
            samples.append(rss_mb(proc.pid))
            print(f"  settling: {end - time.monotonic():4.0f}s left, RSS {samples[-1]:.1f} MB",
                  flush=True)  # fmt: skip
            time.sleep(5)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        scrapes = {
            variant: [timed_get(conn, "/metrics", headers) for _ in range(args.scrapes)]
            for variant, headers in VARIANTS.items()
        }
        metrics = scrapes["text"]
        health = [timed_get(conn, "/healthz") for _ in range(args.scrapes)]
        steady = rss_mb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        med_m, med_h = statistics.median(metrics), statistics.median(health)
        p95 = statistics.quantiles(metrics, n=20)[18]
        print()
        print(f"checks configured:            {args.checks}")
        print(f"series in one scrape:         {series}")
        print(f"steady-state RSS:             {steady:.1f} MB (max while settling "
              f"{max(samples):.1f} MB; target <= 80 MB)")  # fmt: skip
        print(f"/metrics median over {args.scrapes}: {med_m * 1000:.2f} ms "
              f"(p95 {p95 * 1000:.2f} ms; target <= 5 ms)")  # fmt: skip
        for variant, times in scrapes.items():
            print(f"  {variant + ':':<18} median {statistics.median(times) * 1000:.3f} ms, "
                  f"p95 {statistics.quantiles(times, n=20)[18] * 1000:.3f} ms")  # fmt: skip
        print(f"/healthz median (floor):      {med_h * 1000:.2f} ms; /metrics = "
              f"{med_m / med_h:.1f}x the floor")  # fmt: skip
        print(f"uncached render (once per snapshot reload, in-process): "
              f"{uncached_render_ms(args.checks):.2f} ms")  # fmt: skip
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
