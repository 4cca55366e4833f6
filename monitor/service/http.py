"""The HTTP endpoints: /metrics for Prometheus, /healthz, /readyz, the status page and its JSON."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer

from alerts import Clock, SystemClock
from config import ConfigError
from monitor.service.exposition import CachedExposition
from monitor.service.latest_result import check_in_path, json_body, latest_result
from monitor.service.metrics import DatabaseViews, exposition_key
from monitor.service.status_page import Focus, StatusPage

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
        clock: Clock | None = None,
    ) -> None:
        """`stale_for` and `monotonic`: see CachedExposition (0: every change renders);
        `clock`: the status page's "generated at" and "3 min ago"."""
        self.exposition = CachedExposition(
            registry, lambda: exposition_key(views), stale_for=stale_for, monotonic=monotonic
        )
        self.views = views
        self.scheduler_running = scheduler_running
        self.page = StatusPage(views, clock or SystemClock(), lambda: self.store_up)

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
        query = environ.get("QUERY_STRING", "")
        if path == "/":
            body = self.status_page(query).encode()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(body))),
                                      ("Cache-Control", "no-store")])  # fmt: skip
            return [body]
        check = check_in_path(path)
        if check is not None:
            database = (parse_qs(query).get("database") or [""])[0] or None
            code, payload = latest_result(self.views, self.page.secrets, check, database)
            body = json_body(payload)
            start_response(_STATUS[code], [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(body)))])  # fmt: skip
            return [body]
        return _text(start_response, False, "not found", status="404 Not Found")

    def status_page(self, query_string: str = "") -> str:
        """The page `/` (see status_page.py), for the `?check=&database=` of an alert's link."""
        return self.page.render(Focus.parse(query_string))


_STATUS = {200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found"}


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
