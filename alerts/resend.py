"""Re-post what still fires to each alertmanager route every re-send interval (as Prometheus)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from config import AlertsSettings, RouteType, count, format_duration

from .alertmanager import alerts_body, post_alerts
from .clock import Clock
from .notification import Notification

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class FiringAlerts(Protocol):
    """The alerts to re-send (the state store implements it)."""

    def to_resend(
        self, route: str, now: dt.datetime, sent_before: dt.datetime
    ) -> list[Notification]:
        """The last message of every firing, announced alert on `route`, leaving out alerts
        with a message still pending in the outbox, alerts whose last message was delivered
        at or after `sent_before` (just posted) and checks silenced at `now`."""
        ...


class Resender:
    """Keeps firing alerts alive in Alertmanager, which forgets an alert once its endsAt
    passes: one POST per Alertmanager per route and interval, carrying all its firing alerts.

    Call it from the thread that delivers the outbox, after the outbox: then a re-send read
    before an alert resolved is posted before that alert's resolved message, and an alert
    whose resolved message is still queued is not re-sent at all (the store leaves it out),
    so a stale "firing" never re-opens a resolved alert. Re-sends are best effort and are
    not outbox messages: a failed one is logged, and the next comes one interval later.
    """

    def __init__(
        self,
        store: FiringAlerts,
        settings: AlertsSettings,
        clock: Clock,
        client: Callable[[], httpx.Client],
    ) -> None:
        self.store = store
        self.clock = clock
        self.client = client
        self.routes = tuple(r for r in settings.routes if r.type is RouteType.ALERTMANAGER)
        self._next: dict[str, float] = {}  # route -> monotonic time its next re-send is due

    def resend_due(self) -> int:
        """Re-send on every alertmanager route whose interval is up (each is due at once
        after start-up); returns the alerts posted. Raises the store's errors (StoreError,
        StoreUnavailable); never raises for an Alertmanager's answer."""
        started = self.clock.monotonic()
        due = [r for r in self.routes if self._next.get(r.name, started) <= started]
        if not due:
            return 0  # no alertmanager route, or none due: no query
        # An alert the outbox delivered within the interval was just posted: it waits for the
        # next round, so a firing message is not followed by an identical re-send at once.
        posted = 0
        for route in due:
            self._next[route.name] = started + route.resend_every.total_seconds()
            now = self.clock.now()
            messages = self.store.to_resend(route.name, now, now - route.resend_every)
            if not messages:
                continue
            body = alerts_body(messages, now, route.resend_every)
            for where, outcome in post_alerts(route, body, self.client, self.clock):
                if not outcome.delivered:
                    log.warning("re-sending %s of route %s to Alertmanager %s: %s; next try "
                                "in %s", count(len(messages), "firing alert"), route.name, where,
                                outcome.reason, format_duration(route.resend_every))  # fmt: skip
            posted += len(messages)
        return posted
