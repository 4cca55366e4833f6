"""/metrics over real HTTP: OpenMetrics, gzip and name[] as prometheus_client serves them."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from alerts import SystemClock
from config import load_settings
from monitor.app import App
from monitor.service.exposition import CachedExposition
from monitor.service.http import Endpoints, HttpServer
from monitor.service.metrics import DqCollector, StatsCache, one_database
from tests.factories import seed_race
from tests.helpers import FakeClock
from tests.monitor.service.test_prometheus_scrape import _wait_for_value, running_prometheus

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# What Prometheus 2.x sends (scrape/scrape.go, scrapeAcceptHeader).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class CountingCollector(DqCollector):
    """The real collector, counting how often a scrape makes it collect."""

    collected = 0

    def collect(self) -> Iterator[Metric]:
        self.collected += 1
        yield from super().collect()


@pytest.fixture
def app(monkeypatch, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    application = App.open(load_settings(), clock=SystemClock())
    yield application
    application.close()


class Served:
    def __init__(self, app: App) -> None:
        self.cache = StatsCache(app.store, app.clock)
        self.cache.refresh()
        self.leader = False
        views = one_database(app.settings, self.cache, lambda: self.leader)
        self.collector = CountingCollector(app.settings, views)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        self.endpoints = Endpoints(registry, views, scheduler_running=lambda: True)
        self.server = HttpServer(self.endpoints, "127.0.0.1", 0)

    def get(
        self, query: str = "", method: str = "GET", **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.server.port}/metrics{query}", method=method,
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def served(app) -> Iterator[Served]:
    served = Served(app)
    served.server.start()
    yield served
    served.server.stop()


def families(body: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(body.decode())}


def test_openmetrics_when_asked_and_the_text_format_otherwise(served):
    status, headers, body = served.get(Accept="application/openmetrics-text")
    assert status == 200
    assert headers["Content-Type"] == OPENMETRICS
    assert body.endswith(b"# EOF\n")
    parsed = {f.name: f for f in om_families(body.decode())}  # the strict OpenMetrics parser
    assert {"counter", "gauge", "histogram"} <= {f.type for f in parsed.values()}
    assert parsed["dq_check_violations"].samples[0].labels == {
        "database": "default", "check": "dashboard_mismatch"
    }  # fmt: skip

    status, headers, text = served.get()
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in text
    assert b'dq_check_violations{check="dashboard_mismatch",database="default"} 0.0\n' in text
    assert families(text) == set(parsed)


def test_prometheus_accept_header_gets_openmetrics(served):
    _, headers, body = served.get(Accept=PROMETHEUS_ACCEPT)
    assert headers["Content-Type"].startswith(OPENMETRICS)
    assert body.endswith(b"# EOF\n")


def test_gzip_when_asked_and_not_otherwise(served):
    _, plain_headers, plain = served.get()
    assert "Content-Encoding" not in plain_headers
    assert plain.startswith(b"# HELP ")
    _, headers, body = served.get(Accept_Encoding="gzip, deflate")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    _, headers, body = served.get(Accept="application/openmetrics-text", Accept_Encoding="gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).endswith(b"# EOF\n")


def test_name_filter_returns_only_the_named_families(served):
    _, _, everything = served.get()
    assert len(families(everything)) > 10
    _, _, one = served.get("?name[]=dq_check_violations")
    assert families(one) == {"dq_check_violations"}
    assert b'dq_check_violations{check="dashboard_mismatch",database="default"} 0.0\n' in one
    _, _, two = served.get("?name[]=dq_check_violations&name[]=dq_build_info")
    assert families(two) == {"dq_check_violations", "dq_build_info"}
    _, _, none = served.get("?name[]=no_such_metric")
    assert none == b""


def test_a_second_scrape_is_the_same_bytes_without_collecting_again(served, db, app):
    first = served.get(Accept="application/openmetrics-text")
    assert served.collector.collected == 1
    assert served.get(Accept="application/openmetrics-text") == first
    assert served.collector.collected == 1
    # Another variant renders the families already collected for this snapshot.
    _, _, text = served.get()
    assert served.get()[2] == text
    assert served.get("?name[]=dq_build_info")[2].startswith(b"# HELP dq_build_info ")
    assert served.collector.collected == 1
    assert len(served.endpoints.exposition.variants()) == 3

    # What it shows changed: collected once more, and every variant says so.
    served.leader = True
    assert served.get()[2] != text
    assert served.get(Accept="application/openmetrics-text")[2] != first[2]
    assert served.collector.collected == 2
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    assert served.cache.refresh()
    assert (
        b'dq_check_violations{check="dashboard_mismatch",database="default"} 1.0' in served.get()[2]
    )
    assert served.collector.collected == 3


def test_warm_renders_the_served_variants_before_the_next_scrape(served, db, app):
    """After a reload, warm() renders (in the refresh thread) the variants scrapers asked for,
    so their next scrape is served from the cache, with the new values."""
    served.get(Accept=PROMETHEUS_ACCEPT, Accept_Encoding="gzip")
    served.get()
    assert served.endpoints.exposition.warm() == 0  # nothing changed: nothing to render
    assert served.collector.collected == 1
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    assert served.cache.refresh()
    assert served.endpoints.exposition.warm() == 2
    assert served.collector.collected == 2  # collected once for both variants
    _, headers, body = served.get(Accept=PROMETHEUS_ACCEPT, Accept_Encoding="gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert b'dq_check_violations{check="dashboard_mismatch",database="default"} 1.0' in (
        gzip.decompress(body)
    )
    text = served.get()[2]
    assert b'dq_check_violations{check="dashboard_mismatch",database="default"} 1.0' in text
    assert served.collector.collected == 2  # both scrapes came from the warmed cache
    assert served.endpoints.exposition.warm() == 0


def test_other_methods_answer_as_prometheus_client_does(served):
    status, headers, body = served.get(method="POST")
    assert status == 405
    assert headers["Allow"] == "OPTIONS,GET"
    assert body == b"# HTTP 405 Method Not Allowed: POST; use OPTIONS or GET\n"
    status, headers, _ = served.get(method="OPTIONS")
    assert (status, headers["Allow"]) == (200, "OPTIONS,GET")
    assert served.collector.collected == 0


class Fixed:
    """A collector whose families are built once: the bound on variants needs no database."""

    def __init__(self) -> None:
        self.collected = 0

    def collect(self) -> Iterable[Metric]:
        self.collected += 1
        metric = Metric("demo_value", "A value.", "gauge")
        metric.add_sample("demo_value", {}, 1.0)
        return [metric]


def test_the_cache_keeps_a_bounded_number_of_variants():
    registry = CollectorRegistry(auto_describe=False)
    collector = Fixed()
    registry.register(collector)
    exposition = CachedExposition(registry, lambda: 1, max_variants=2)

    def scrape(query: str) -> bytes:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": query}
        return exposition.response(environ)[2]

    for i in range(5):
        assert scrape(f"name[]=n{i}") == b""
    assert [v[2] for v in exposition.variants()] == [("n3",), ("n4",)]
    assert scrape("") == b"# HELP demo_value A value.\n# TYPE demo_value gauge\ndemo_value 1.0\n"
    assert len(exposition.variants()) == 2
    assert collector.collected == 1


def test_a_real_prometheus_scrapes_it_as_openmetrics(served, tmp_path):
    with running_prometheus(tmp_path, served.server.port) as port:
        assert _wait_for_value(port, 'up{job="dq-monitor"}') == 1
        assert (
            _wait_for_value(
                port, 'dq_check_violations{database="default", check="dashboard_mismatch"}'
            )
            == 0
        )
    served_types = {content_type for content_type, _, _ in served.endpoints.exposition.variants()}
    assert any(t.startswith(OPENMETRICS) for t in served_types), served_types


class Counting:
    """A collector whose one value is `value[0]`, counting its collections."""

    def __init__(self) -> None:
        self.value = [1.0]
        self.collected = 0

    def collect(self) -> Iterable[Metric]:
        self.collected += 1
        metric = Metric("demo_value", "A value.", "gauge")
        metric.add_sample("demo_value", {}, self.value[0])
        return [metric]


def test_stale_for_bounds_how_often_a_scrape_renders():
    """With stale_for, a scrape after a change gets the body rendered less than stale_for ago
    (on the injected clock); once it is older the scrape renders, and warm() always does."""
    clock = FakeClock()
    registry = CollectorRegistry(auto_describe=False)
    collector = Counting()
    registry.register(collector)
    exposition = CachedExposition(
        registry, lambda: collector.value[0], stale_for=5, monotonic=clock.monotonic
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}

    def scrape() -> bytes:
        return exposition.response(environ)[2]

    assert scrape().endswith(b"demo_value 1.0\n")
    collector.value[0] = 2.0
    clock.advance(seconds=4)
    assert scrape().endswith(b"demo_value 1.0\n")  # 4 s old: still served
    assert collector.collected == 1
    clock.advance(seconds=1)
    assert scrape().endswith(b"demo_value 2.0\n")  # 5 s old: rendered again
    assert collector.collected == 2
    collector.value[0] = 3.0
    assert exposition.warm() == 1  # the refresh thread renders at once, whatever its age
    assert scrape().endswith(b"demo_value 3.0\n")
    assert collector.collected == 3
