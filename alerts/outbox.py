"""Deliver the alert outbox: at least once, in order per alert, with backoff and pacing."""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

from checks import JsonValue
from config import AlertsSettings, RouteSettings, RouteType, count, format_duration

from .clock import Clock
from .delivery import RETRY_AFTER_CAP, Outcome, deliver, deliver_digest
from .http import http_client
from .notification import Notification

if TYPE_CHECKING:  # loaded by the client property: a cycle with nothing to send never needs it
    import httpx

log = logging.getLogger(__name__)

SLACK_MIN_GAP = 1.0  # Slack allows about one message per second per incoming webhook
BACKOFF_CAP = 300.0
_BACKOFF_DOUBLINGS = 16  # 2**16 s is past BACKOFF_CAP already; 2.0**1100 would overflow


@dataclass(frozen=True)
class QueuedMessage:
    """One message waiting in the outbox (a row of alert_outbox)."""

    id: int
    route: str
    payload: dict[str, JsonValue]  # Notification.to_json()
    attempts: int
    created_at: dt.datetime
    last_error: str | None


class OutboxClaim(Protocol):
    """A due message, held (no other sender can take it) until the claim's context ends.

    Exactly one mark_* call records the attempt; it commits when the context exits.
    """

    @property
    def message(self) -> QueuedMessage: ...

    def mark_sent(self, outcome: Outcome, now: dt.datetime, took: float) -> None:
        """Delivered `took` seconds after it was queued."""

    def mark_retry(self, outcome: Outcome, attempts: int, now: dt.datetime, delay: float) -> None:
        """Failed for now: try again `delay` seconds after `now`."""

    def mark_dead(self, outcome: Outcome) -> None:
        """Given up: never retried (outcome.reason says why)."""


class OutboxBatch(Protocol):
    """Several due messages of one route, held together until the batch's context ends.

    Each mark_* call records the attempt for the messages named by `ids`; all commit when
    the context exits.
    """

    @property
    def messages(self) -> Sequence[QueuedMessage]: ...

    def mark_sent(self, outcome: Outcome, now: dt.datetime, ids: Collection[int]) -> None:
        """Delivered (each message's time in the queue is counted)."""

    def mark_retry(
        self, outcome: Outcome, now: dt.datetime, delay: float, ids: Collection[int]
    ) -> None:
        """Failed for now: each message's attempts grow by one; due `delay` s after `now`."""

    def mark_dead(self, outcome: Outcome, ids: Collection[int]) -> None:
        """Given up: never retried."""


class OutboxStore(Protocol):
    """Where the outbox is kept (the state store implements it)."""

    def claim_due(
        self, now: dt.datetime, skip_routes: Collection[str] = ()
    ) -> AbstractContextManager[OutboxClaim | None]:
        """The oldest message due at `now`, of a route not in `skip_routes`, whose alert has
        no older message still pending (so a resolved message never overtakes the firing
        one it answers); None if none."""
        ...

    def claim_route_due(
        self, now: dt.datetime, route: str, limit: int
    ) -> AbstractContextManager[OutboxBatch | None]:
        """Up to `limit` of `route`'s messages due at `now`, by claim_due's rule (the oldest
        pending message of each alert), oldest first; None if none."""
        ...


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lines: list[str] = field(default_factory=list)


class OutboxSender:
    """Delivers due messages one at a time, each claimed for the length of its attempt.

    A crash after sending but before the claim commits re-sends the message after restart:
    delivery is at least once, and every message carries an idempotency key for receivers
    to dedupe.
    """

    def __init__(
        self,
        store: OutboxStore,
        settings: AlertsSettings,
        clock: Clock,
        *,
        client: httpx.Client | None = None,
        console: TextIO | None = None,
        rng: random.Random | None = None,
        last_posts: dict[str, float] | None = None,
    ) -> None:
        """`last_posts` (route name -> when its last Slack post went) is shared by the
        senders of several databases' outboxes, so a Slack webhook is paced once for all."""
        self.store = store
        self.settings = settings
        self.clock = clock
        self._client = client
        self._owns_client = client is None  # a client given is shared: its owner closes it
        self.console = console
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._last_post: dict[str, float] = {} if last_posts is None else last_posts

    @property
    def client(self) -> httpx.Client:
        """The HTTP client, made on first use: loading httpx and building its TLS context
        cost more than a cycle's SQL, and most cycles have nothing to send."""
        if self._client is None:
            self._client = http_client(self.settings.request_timeout.total_seconds())
        return self._client

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Deliver up to `limit` due messages. Raises the store's errors (StoreError,
        StoreUnavailable)."""
        report = DeliveryReport()
        digests = tuple(route for route in self.settings.routes if route.digest)
        for route in digests:
            with self.store.claim_route_due(self.clock.now(), route.name, limit) as batch:
                if batch is not None:
                    self._digest(route, batch, report)
        skip = [route.name for route in digests]
        for _ in range(limit):
            with self.store.claim_due(self.clock.now(), skip) as claim:
                if claim is None:
                    break
                self._attempt(claim, report)
        return report

    def _digest(self, route: RouteSettings, batch: OutboxBatch, report: DeliveryReport) -> None:
        """One post for the whole batch; every message in it shares the post's outcome."""
        now = self.clock.now()
        max_age = self.settings.max_delivery_age
        old = [m.id for m in batch.messages if now - m.created_at > max_age]
        if old:
            reason = f"undelivered for {format_duration(max_age)}"
            self._dead_batch(batch, Outcome(False, permanent=True, reason=reason), old, report)
        live = [m for m in batch.messages if m.id not in old]
        if not live:
            return
        self._pace(route)
        notifications = [Notification.from_json(m.payload) for m in live]
        outcome = deliver_digest(route, notifications, lambda: self.client, clock=self.clock)
        ids = [m.id for m in live]
        if outcome.delivered:
            batch.mark_sent(outcome, self.clock.now(), ids)
            report.sent += len(ids)
            report.lines.append(f"route {route.name}: digest of {count(len(ids), 'alert')}: "
                                f"{outcome.describe()}")  # fmt: skip
            return
        if outcome.permanent:
            self._dead_batch(batch, outcome, ids, report)
            return
        delay = self.backoff(max(m.attempts for m in live) + 1, outcome)
        now = self.clock.now()
        late = [m.id for m in live if now + dt.timedelta(seconds=delay) - m.created_at > max_age]
        if late:
            reason = f"{outcome.reason}; the next attempt would pass max_delivery_age"
            dead = Outcome(False, permanent=True, status=outcome.status, reason=reason)
            self._dead_batch(batch, dead, late, report)
        retried = [i for i in ids if i not in late]
        if retried:
            batch.mark_retry(outcome, now, delay, retried)
            report.retried += len(retried)
            report.lines.append(f"route {route.name}: digest of {count(len(retried), 'alert')}: "
                                f"{outcome.reason}; retrying in {delay:.1f}s")  # fmt: skip
            log.warning("digest to route %s: %s; retrying in %.1fs",
                        route.name, outcome.reason, delay)  # fmt: skip

    def _dead_batch(
        self, batch: OutboxBatch, outcome: Outcome, ids: Sequence[int], report: DeliveryReport
    ) -> None:
        batch.mark_dead(outcome, ids)
        report.dead += len(ids)
        digest = f"digest of {count(len(ids), 'alert')}"
        report.lines.append(f"route {batch.messages[0].route}: {digest}: {outcome.reason}; "
                            "marked dead")  # fmt: skip
        log.error("digest to route %s: %s; %d marked dead, not retried",
                  batch.messages[0].route, outcome.reason, len(ids))  # fmt: skip

    def _attempt(self, claim: OutboxClaim, report: DeliveryReport) -> None:
        message = claim.message
        route = self.settings.route(message.route)
        if route is None:
            gone = f"route {message.route!r} is no longer configured"
            self._dead(claim, Outcome(False, permanent=True, reason=gone), report)
            return
        if self.clock.now() - message.created_at > self.settings.max_delivery_age:
            age = format_duration(self.settings.max_delivery_age)
            reason = f"undelivered for {age}; last error: {message.last_error}"
            self._dead(claim, Outcome(False, permanent=True, reason=reason), report)
            return
        self._pace(route)
        outcome = deliver(
            route, Notification.from_json(message.payload), lambda: self.client,
            clock=self.clock, console=self.console,
        )  # fmt: skip
        if outcome.delivered:
            now = self.clock.now()
            claim.mark_sent(outcome, now, (now - message.created_at).total_seconds())
            report.sent += 1
            report.lines.append(f"route {message.route}: {outcome.describe()}")
        elif outcome.permanent:
            self._dead(claim, outcome, report)
        else:
            self._retry(claim, outcome, report)

    def _pace(self, route: RouteSettings) -> None:
        if route.type is not RouteType.SLACK:
            return
        now = self.clock.now().timestamp()
        last = self._last_post.get(route.name)
        if last is not None and now - last < SLACK_MIN_GAP:
            self.clock.sleep(SLACK_MIN_GAP - (now - last))
        self._last_post[route.name] = self.clock.now().timestamp()

    def backoff(self, attempts: int, outcome: Outcome) -> float:
        """Seconds before the next attempt: Retry-After when given (already at most
        RETRY_AFTER_CAP), else exponential with jitter, at most BACKOFF_CAP."""
        if outcome.retry_after is not None:
            return min(RETRY_AFTER_CAP, outcome.retry_after)
        exponential = 2.0 ** min(attempts, _BACKOFF_DOUBLINGS)
        return min(BACKOFF_CAP, exponential) * self.rng.uniform(0.5, 1.0)

    def _retry(self, claim: OutboxClaim, outcome: Outcome, report: DeliveryReport) -> None:
        message = claim.message
        attempts = message.attempts + 1
        delay = self.backoff(attempts, outcome)
        max_age = self.settings.max_delivery_age
        now = self.clock.now()
        if now + dt.timedelta(seconds=delay) - message.created_at > max_age:
            # The attempt would come after the message is dead anyway; giving up now also
            # frees the alert's later messages (a resolved one waits behind this one).
            reason = (f"{outcome.reason}; the next attempt (in {delay:.0f}s) would pass "
                      f"max_delivery_age {format_duration(max_age)}")  # fmt: skip
            dead = Outcome(False, permanent=True, status=outcome.status, reason=reason)
            self._dead(claim, dead, report)
            return
        claim.mark_retry(outcome, attempts, now, delay)
        report.retried += 1
        report.lines.append(f"route {message.route}: {outcome.reason}; retrying in {delay:.1f}s")
        log.warning(
            "alert to route %s: %s; retrying in %.1fs", message.route, outcome.reason, delay,
            extra={"route": message.route, "outcome": "failed"},
        )  # fmt: skip

    def _dead(self, claim: OutboxClaim, outcome: Outcome, report: DeliveryReport) -> None:
        route = claim.message.route
        claim.mark_dead(outcome)
        report.dead += 1
        report.lines.append(f"route {route}: {outcome.reason}; marked dead")
        log.error("alert to route %s: %s; marked dead, not retried", route, outcome.reason,
                  extra={"route": route, "outcome": "dead"})  # fmt: skip

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
