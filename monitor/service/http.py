"""The HTTP endpoints: /metrics for Prometheus, /healthz, /readyz, and a small status page."""

from __future__ import annotations

import datetime as dt
import html
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer

from config import ConfigError
from monitor.service.exposition import CachedExposition
from monitor.service.metrics import STATUS_VALUE, DatabaseViews, exposition_key

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        return


class Endpoints:
    """A WSGI app routing the four paths; everything it shows comes from memory."""

    def __init__(
        self,
        registry: CollectorRegistry,
        views: DatabaseViews,
        *,
        scheduler_running: Callable[[], bool],
        stale_for: float = 0.0,
        monotonic: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """`stale_for` and `monotonic`: see CachedExposition (0: every change renders)."""
        self.exposition = CachedExposition(
            registry, lambda: exposition_key(views), stale_for=stale_for, monotonic=monotonic
        )
        self.views = views
        self.scheduler_running = scheduler_running

    @property
    def store_up(self) -> bool:
        """Whether the latest read of the state store succeeded, for every database."""
        return all(view.cache.store_up for view in self.views.values())

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return self.exposition(environ, start_response)
        if path == "/healthz":
            ok = self.scheduler_running()
            return _text(start_response, ok, "ok" if ok else "scheduler not running")
        if path == "/readyz":
            ok = self.store_up
            return _text(start_response, ok, "ok" if ok else "state store unreachable")
        if path == "/":
            body = self.status_page().encode()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(body)))])  # fmt: skip
            return [body]
        return _text(start_response, False, "not found", status="404 Not Found")

    def status_page(self) -> str:
        """Each database's checks under a heading of its name, and what this replica leads."""
        sections, leads = [], []
        for database, view in self.views.items():
            if view.is_leader():
                leads.append(database)
            rows = []
            for check in view.checks:
                stats = view.cache.snapshot.stats.check(check.name)
                status = stats.last_status or "not run yet"
                rows.append(
                    f"<tr><td>{html.escape(check.name)}</td>"
                    f"<td class='s{STATUS_VALUE.get(status, 3)}'>{html.escape(status)}</td>"
                    f"<td>{stats.last_violations}</td><td>{_when(stats.last_success_at)}</td></tr>"
                )
            sections.append(
                f"<h2 id='{html.escape(database)}'>database {html.escape(database)}</h2>"
                "<table><tr><th>check</th><th>latest status</th><th>violations</th>"
                f"<th>last success</th></tr>{''.join(rows)}</table>"
            )
        role = (
            f"leader of {html.escape(', '.join(leads))} (runs their checks)" if leads
            else "follower (serves metrics)"
        )  # fmt: skip
        store = "reachable" if self.store_up else "UNREACHABLE (showing last known values)"
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>dq-monitor</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;"
            "text-align:left}.s0{color:#2a7}.s1{color:#c50}.s2{color:#c00}</style></head><body>"
            "<h1>dq-monitor</h1>"
            f"<p>This replica: {role}. State store: {store}.</p>"
            "<p><a href='/metrics'>/metrics</a> · <a href='/healthz'>/healthz</a> · "
            f"<a href='/readyz'>/readyz</a></p>{''.join(sections)}</body></html>"
        )


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def _text(
    start_response: StartResponse, ok: bool, text: str, status: str | None = None
) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(
        status or ("200 OK" if ok else "503 Service Unavailable"),
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


class HttpServer:
    """Serves the endpoints on a background thread; stop() shuts it down."""

    def __init__(self, app: Endpoints, host: str, port: int) -> None:
        """Bind the port now. Raises ConfigError when it cannot (in use, no permission)."""
        try:
            self.server = make_server(
                host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}; choose another port "
                "with DQ_METRICS_PORT or --metrics-port"
            ) from exc
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
