"""A dead man's switch: ping a URL (healthchecks.io style) after each successful cycle."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import SecretStr

from config import redact

from .clock import Clock
from .secrets import url_secrets

if TYPE_CHECKING:  # loaded by ping(): without a heartbeat URL, never
    import httpx

log = logging.getLogger(__name__)


class Heartbeat:
    """Pings `url` at most once per `min_interval` seconds; a failed ping is logged, not fatal.

    `client()` gives the HTTP client, asked for only when there is a URL to ping.
    """

    def __init__(
        self,
        url: SecretStr | None,
        client: Callable[[], httpx.Client],
        clock: Clock,
        min_interval: float = 30.0,
    ) -> None:
        self.url = url
        self.clock = clock
        self.client = client
        self.min_interval = min_interval
        self._last: float | None = None

    def ping(self) -> bool:
        """Ping now unless pinged recently; returns whether a ping was answered with 2xx."""
        if self.url is None:
            return False
        now = self.clock.monotonic()
        if self._last is not None and now - self._last < self.min_interval:
            return False
        self._last = now
        import httpx

        secret = self.url.get_secret_value()
        try:
            response = self.client().get(secret)
        except httpx.HTTPError as exc:
            detail = redact(str(exc), url_secrets(secret)) or type(exc).__name__
            log.warning("heartbeat ping failed: %s", detail)
            return False
        if not response.is_success:
            log.warning("heartbeat ping answered HTTP %d", response.status_code)
            return False
        return True
