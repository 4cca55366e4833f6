"""/metrics through prometheus_client's own WSGI app, each variant cached per snapshot."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
# (content type, gzipped, the name[] filter or None): everything that makes two bodies differ.
Variant = tuple[str, bool, tuple[str, ...] | None]
Response = tuple[str, list[tuple[str, str]], bytes]

# Scrapers ask for a handful of variants (Prometheus: OpenMetrics, gzipped; curl: text); the
# name[] filter is the client's to choose, so the cache is bounded rather than one per query.
MAX_VARIANTS = 16


class _Families:
    """The collected families of one snapshot: every variant renders from the same list, so a
    new variant re-renders without collecting again."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return self.families


class CachedExposition:
    """A WSGI app serving `registry` exactly as `prometheus_client.make_wsgi_app` does
    (content negotiation, gzip, `name[]`, OPTIONS and 405), without collecting or rendering
    again while `key()` stays the same.

    Rendering 20 checks' series takes several milliseconds, yet the values change only when
    the snapshot is reloaded, this replica's leadership or store state flips, or a sweep
    moves on; scrapes in between get the bytes rendered for their variant the first time.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        key: Callable[[], Hashable],
        *,
        max_variants: int = MAX_VARIANTS,
        stale_for: float = 0.0,
        monotonic: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """`stale_for` > 0 (seconds, read on `monotonic`, the injected clock's): a scrape after
        the key changed still gets a body rendered less than that long ago, so however often
        snapshots reload (with many databases, after every check run), a variant renders at
        most once per `stale_for` on the scrape path; warm() renders for the new key."""
        self.registry = registry
        self.key = key
        self.max_variants = max_variants
        self.stale_for = stale_for
        self.monotonic = monotonic
        self._families = _Families()
        # Without collectors_without_names a RestrictedRegistry (name[]) would find no
        # collector to ask: ours cannot name its families before it has collected them.
        frozen = CollectorRegistry(auto_describe=False, support_collectors_without_names=True)
        frozen.register(self._families)
        self._app = make_wsgi_app(frozen)
        self._lock = threading.Lock()
        self._key: Hashable = None
        self._collected = False
        self._responses: OrderedDict[Variant, Response] = OrderedDict()
        # What each cached variant was asked with, so warm() can render it again.
        self._environs: dict[Variant, Environ] = {}
        self._rendered_at: dict[Variant, float] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") != "GET":
            # OPTIONS and 405 carry no metrics: prometheus_client answers them as it does.
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        status, headers, body = self.response(environ)
        start_response(status, list(headers))
        return [body]

    def response(self, environ: Environ) -> Response:
        """The status, headers and body prometheus_client gives this request, from the cache
        when the snapshot and the variant are the same as an earlier request's."""
        key = self.key()
        variant = negotiated(environ)
        with self._lock:
            if key != self._key:
                recent = self._recent(variant)
                if recent is not None:
                    return recent
                self._key, self._collected = key, False
                self._responses.clear()
                self._environs.clear()
                self._rendered_at.clear()
            cached = self._responses.get(variant)
            if cached is not None:
                self._responses.move_to_end(variant)
                return cached
            return self._store(variant, _asked(environ))

    def warm(self) -> int:
        """After the key changed (a snapshot reload), render again the variants served for
        the previous key, so the scrapes that follow find their bytes ready; returns how many
        it rendered (0 when the key is unchanged or a scrape already rendered for it).

        With many databases a render takes far longer than a cached scrape (bench/
        metrics_bench.py), and reloads come more often than Prometheus scrapes: warmed from
        the refresh thread, a scrape no longer pays for it.
        """
        key = self.key()
        with self._lock:
            if key == self._key:
                return 0
            environs = [self._environs[variant] for variant in self._responses]
            self._key, self._collected = key, False
            self._responses.clear()
            self._environs.clear()
            self._rendered_at.clear()
            for environ in environs:
                self._store(negotiated(environ), environ)
            return len(environs)

    def _recent(self, variant: Variant) -> Response | None:
        """The variant's body for an earlier key, while younger than stale_for."""
        cached = self._responses.get(variant)
        if cached is None or self.stale_for <= 0:
            return None
        if self.monotonic() - self._rendered_at[variant] >= self.stale_for:
            return None
        self._responses.move_to_end(variant)
        return cached

    def _store(self, variant: Variant, environ: Environ) -> Response:
        """Render `variant` for the current key and cache it (the lock is held)."""
        if not self._collected:
            self._families.families = list(self.registry.collect())
            self._collected = True
        rendered = self._render(environ)
        self._responses[variant] = rendered
        self._environs[variant] = environ
        self._rendered_at[variant] = self.monotonic()
        while len(self._responses) > self.max_variants:
            evicted, _ = self._responses.popitem(last=False)
            del self._environs[evicted], self._rendered_at[evicted]
        return rendered

    def variants(self) -> list[Variant]:
        """The variants cached for the current snapshot, least recently served first."""
        with self._lock:
            return list(self._responses)

    def _render(self, environ: Environ) -> Response:
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            started.append((status, headers))

        body = b"".join(self._app(environ, capture))
        status, headers = started[0]
        return status, headers, body


def _asked(environ: Environ) -> Environ:
    """The parts of a GET that prometheus_client's app reads, to render it again later."""
    keys = ("PATH_INFO", "QUERY_STRING", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING")
    return {"REQUEST_METHOD": "GET", **{k: environ[k] for k in keys if k in environ}}


def negotiated(environ: Environ) -> Variant:
    """What prometheus_client's app would make of this GET, with its own functions: the
    content type its encoder choice yields, whether it gzips, and the name[] filter."""
    _, content_type = choose_encoder(environ.get("HTTP_ACCEPT") or "")
    gzipped = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING") or "")
    names = parse_qs(environ.get("QUERY_STRING", "")).get("name[]")
    return content_type, gzipped, tuple(sorted(set(names))) if names else None
