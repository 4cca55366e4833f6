"""Benchmark /metrics with many monitored databases: rendering, and scrapes over loopback HTTP.

Target (issue 16): with 50 databases x 7 checks, a /metrics scrape's median at most 10 ms.
Each database gets the 7 built-in checks with every series filled (runs, buckets) and one
alert route, as the collector renders them from its cached snapshots. Timed, in one process:
  render:    collect + encode once (what a scrape costs right after any database's snapshot
             reload, leadership change or sweep step; OpenMetrics, as Prometheus asks);
  reloaded:  an HTTP scrape after one database's snapshot was reloaded and nothing rendered it
             yet (every replica reloads every schedule.metrics_refresh_interval, 5 s by
             default, more often than Prometheus scrapes, 30 s);
  warmed:    the same after the reload, once the refresh thread's warm() rendered the variant
             already served (what `dq-monitor run` does), and how long that warm() took;
  cached:    an HTTP scrape with nothing changed since the previous one (a second scraper, a
             retry, curl), per variant.
Usage: python bench/metrics_bench.py [--databases 1,10,50] [--scrapes 500] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts import SystemClock  # noqa: E402
from checks import REGISTRY, all_checks  # noqa: E402
from config import Settings, load_settings  # noqa: E402
from monitor.service.exposition import CachedExposition  # noqa: E402
from monitor.service.http import Endpoints, HttpServer  # noqa: E402
from monitor.service.metrics import (  # noqa: E402
    DatabaseView,
    StatsCache,
    StatsSnapshot,
    build_registry,
    exposition_key,
)
from monitor.store import (  # noqa: E402
    DURATION_BUCKETS,
    CheckStats,
    DeliveryStats,
    StateStore,
    StoreStats,
)
from monitor.store.rows import RouteDelivery  # noqa: E402

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
VARIANTS = {
    "text": {},
    "openmetrics": {"Accept": OPENMETRICS},
    "openmetrics+gzip": {"Accept": OPENMETRICS, "Accept-Encoding": "gzip"},
}


def settings() -> Settings:
    os.environ["DQ_ALERTS__ROUTES"] = '[{"name": "team", "type": "console"}]'
    loaded = load_settings()
    assert [c.name for c in all_checks(loaded) if c.settings.enabled] == list(REGISTRY)
    return loaded


def snapshot(config: Settings, seed: int) -> StatsSnapshot:
    """Every check of one database with runs, errors and a full histogram."""
    now = dt.datetime.now(dt.UTC)
    checks = {
        c.name: CheckStats(
            c.name, severity=c.severity.value, last_status="violation", last_violations=seed,
            last_run_at=now, last_success_at=now, runs_total=1000 + seed, errors_total=3,
            missed_total=1, overlaps_total=2,
            duration_buckets=tuple(range(len(DURATION_BUCKETS) + 1)), duration_sum=12.5,
        )
        for c in all_checks(config)
    }  # fmt: skip
    delivery = DeliveryStats(
        routes={"team": RouteDelivery("team", 40, 2, 1, (1,) * (len(DURATION_BUCKETS) + 1), 9.0)},
        outbox_pending=seed % 3,
    )
    service: dict[str, dict[str, object]] = {
        "database": {"up": True},
        "gate": {"decision": "blocked"},
    }
    return StatsSnapshot(StoreStats(checks, delivery, service), loaded_at=time.time())


def views(config: Settings, count: int) -> dict[str, DatabaseView]:
    shown = {}
    for i in range(count):
        # refresh() is never called: the snapshot is set, so no state store is needed.
        cache = StatsCache(cast(StateStore, None), SystemClock())
        cache.snapshot, cache.store_up = snapshot(config, i), True
        # This replica leads a third of the databases.
        shown[f"db_{i:02d}"] = DatabaseView(config, cache, (i % 3 == 0).__bool__)
    return shown


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] * 1000


def timed_get(conn: http.client.HTTPConnection, headers: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    conn.request("GET", "/metrics", headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.status
    return elapsed, len(body)


def measure(config: Settings, count: int, scrapes: int) -> dict[str, object]:
    shown = views(config, count)
    registry = build_registry(config, shown)
    first = next(iter(shown.values())).cache

    def reload() -> None:
        # What a metrics refresh does to one database: a new snapshot, a new loaded_at.
        first.snapshot = StatsSnapshot(first.snapshot.stats, loaded_at=time.perf_counter())

    exposition = CachedExposition(registry, lambda: exposition_key(shown))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "HTTP_ACCEPT": OPENMETRICS}
    render = []
    for _ in range(max(50, scrapes // 5)):
        reload()
        start = time.perf_counter()
        exposition.response(environ)
        render.append(time.perf_counter() - start)
    body = exposition.response(environ)[2].decode()
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))

    endpoints = Endpoints(registry, shown, scheduler_running=lambda: True)
    server = HttpServer(endpoints, "127.0.0.1", 0)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        timed_get(conn, {})
        reloaded = []
        for _ in range(scrapes):
            reload()
            reloaded.append(timed_get(conn, VARIANTS["openmetrics+gzip"])[0])
        warm, warmed = [], []
        for _ in range(max(50, scrapes // 5)):
            reload()
            start = time.perf_counter()
            assert endpoints.exposition.warm() == 1
            warm.append(time.perf_counter() - start)
            warmed.append(timed_get(conn, VARIANTS["openmetrics+gzip"])[0])
        cached = {}
        for variant, headers in VARIANTS.items():
            timed_get(conn, headers)
            cached[variant] = [timed_get(conn, headers)[0] for _ in range(scrapes)]
        gzipped = timed_get(conn, VARIANTS["openmetrics+gzip"])[1]
    finally:
        server.stop()
    return {
        "databases": count,
        "checks_per_database": len(REGISTRY),
        "series": series,
        "body_bytes": len(body),
        "gzip_bytes": gzipped,
        "render_ms": {"median": median_ms(render), "p95": p95_ms(render)},
        "reloaded_scrape_ms": {"median": median_ms(reloaded), "p95": p95_ms(reloaded)},
        "warm_ms": {"median": median_ms(warm), "p95": p95_ms(warm)},
        "warmed_scrape_ms": {"median": median_ms(warmed), "p95": p95_ms(warmed)},
        "cached_scrape_ms": {
            v: {"median": median_ms(t), "p95": p95_ms(t)} for v, t in cached.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="1,10,50")
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    config = settings()
    results = [measure(config, int(n), args.scrapes) for n in args.databases.split(",")]
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.scrapes} scrapes per figure; milliseconds, median (p95)")  # fmt: skip
    print(f"{'databases':>9} {'series':>7} {'bytes':>7} {'gzip':>6} {'render':>15} "
          f"{'after reload':>15} {'warm()':>15} {'warmed':>15} {'cached text':>15} "
          f"{'cached OM+gz':>15}")  # fmt: skip
    for r in results:
        def cell(figure: object) -> str:
            f = cast(dict[str, float], figure)
            return f"{f['median']:6.2f} ({f['p95']:6.2f})"

        cached = cast(dict[str, object], r["cached_scrape_ms"])
        print(f"{r['databases']:>9} {r['series']:>7} {r['body_bytes']:>7} {r['gzip_bytes']:>6} "
              f"{cell(r['render_ms']):>15} {cell(r['reloaded_scrape_ms']):>15} "
              f"{cell(r['warm_ms']):>15} {cell(r['warmed_scrape_ms']):>15} "
              f"{cell(cached['text']):>15} {cell(cached['openmetrics+gzip']):>15}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
