"""Deliver one message to one route over HTTP, and classify the answer (the httpx boundary)."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from checks import JsonValue
from config import RouteSettings, RouteType, redact

from .channels import CHANNELS
from .clock import Clock
from .console import console_text
from .digest import digest_payload
from .notification import Notification
from .secrets import route_secrets
from .slack import answer_problem

if TYPE_CHECKING:  # loaded by the functions that send: a console route never needs it
    import httpx

_REASON_LIMIT = 300
#: The longest wait a receiver's Retry-After can impose; a longer one is cut to this. An
#: hour keeps a mistaken or hostile header from parking a message (and the messages queued
#: behind it for the same alert) for days; max_delivery_age still ends it sooner.
RETRY_AFTER_CAP = 3600.0
_DELAY_SECONDS = re.compile(r"[0-9]+")

# httpx logs every request's full URL at INFO, and a webhook URL is a secret (Slack's token
# is its path): keep the client libraries' own logging to warnings and above.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery attempt."""

    delivered: bool
    permanent: bool = False  # do not retry: a 4xx other than 408/429
    retry_after: float | None = None  # seconds the receiver asked us to wait (429)
    status: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.delivered:
            return f"delivered (HTTP {self.status})" if self.status else "delivered"
        return self.reason


def deliver(
    route: RouteSettings,
    message: Notification,
    client: Callable[[], httpx.Client],
    *,
    clock: Clock,
    console: TextIO | None = None,
) -> Outcome:
    """Send `message` to `route` once. Never raises for a receiver's answer or a network error.

    The route's URL and header values are secrets: they never appear in the outcome.
    `client()` gives the HTTP client; a console route never asks for it.
    """
    channel = CHANNELS[route.type]
    if channel.send is not None:
        return channel.send(route, message, client, clock)
    request = channel.request
    if request is None:
        print(console_text(message), file=console or sys.stdout, flush=True)
        return Outcome(delivered=True, reason="printed")
    return _post(route, *request(message, route), client, clock)


def deliver_digest(
    route: RouteSettings,
    messages: Sequence[Notification],
    client: Callable[[], httpx.Client],
    *,
    clock: Clock,
) -> Outcome:
    """Send `messages` to a Slack route as one digest (alerts/digest.py), once; as deliver()."""
    return _post(route, digest_payload(messages), {"Content-Type": "application/json"},
                 client, clock)  # fmt: skip


def _post(
    route: RouteSettings,
    payload: dict[str, JsonValue],
    headers: dict[str, str],
    client: Callable[[], httpx.Client],
    clock: Clock,
) -> Outcome:
    assert route.url is not None
    import httpx

    secrets = route_secrets(route)
    try:
        response = client().post(route.url.get_secret_value(), json=payload, headers=headers)
    except httpx.TimeoutException:
        return Outcome(delivered=False, reason="network error: the receiver did not answer in time")
    except (httpx.InvalidURL, UnicodeError):  # IDNA hosts and header values fail as Unicode
        # Settings validate URLs and headers; this guards against anything httpx still refuses.
        reason = "the route's url or headers cannot be sent"
        return Outcome(delivered=False, permanent=True, reason=reason)
    except httpx.HTTPError as exc:
        detail = redact(str(exc), secrets) or type(exc).__name__
        return Outcome(delivered=False, reason=f"network error: {detail}")
    outcome = classify(response, secrets, clock.now())
    if outcome.delivered and route.type is RouteType.SLACK:
        return _slack_answer(response, secrets, outcome)
    return outcome


def _slack_answer(response: httpx.Response, secrets: list[str], outcome: Outcome) -> Outcome:
    # Slack says some failures with a 200 (see slack.answer_problem).
    problem = answer_problem(response.headers.get("Content-Type", ""), response.text)
    if problem is None:
        return outcome
    reason, retry = problem
    reason = redact(f"HTTP {outcome.status}: {reason}".replace("\n", " "), secrets)
    return Outcome(False, permanent=not retry, status=outcome.status, reason=reason[:_REASON_LIMIT])


def classify(response: httpx.Response, secrets: list[str], now: dt.datetime) -> Outcome:
    """2xx delivered; 429 and 5xx (and 408) retried; any other 4xx is permanent.

    A 429's Retry-After is read relative to `now` (the injected clock's time).
    """
    code = response.status_code
    body = redact(response.text.strip().replace("\n", " "), secrets)[:_REASON_LIMIT]
    reason = f"HTTP {code}" + (f": {body}" if body else "")
    if 200 <= code < 300:
        return Outcome(delivered=True, status=code, reason=reason)
    if code == 429:
        wait = parse_retry_after(response.headers.get("Retry-After"), now)
        return Outcome(False, retry_after=wait, status=code, reason=reason)
    if code >= 500 or code == 408:
        return Outcome(False, status=code, reason=reason)
    return Outcome(False, permanent=True, status=code, reason=reason)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After value, at most RETRY_AFTER_CAP; never raises.

    RFC 9110 allows two forms: a non-negative integer of seconds (ASCII digits only) or an
    HTTP-date, counted from `now`. Anything else (`1e12`, `inf`, `-5`, garbage) is None,
    so the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        digits = text.lstrip("0") or "0"
        # Compare lengths before int(): a very long digit string is just "wait long".
        if len(digits) > len(str(int(RETRY_AFTER_CAP))):
            return RETRY_AFTER_CAP
        return min(RETRY_AFTER_CAP, float(int(digits)))
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000": an HTTP-date is always GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - now).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(RETRY_AFTER_CAP, max(0.0, seconds))


@dataclass(frozen=True)
class Reachability:
    """Whether a route's receiver answers HTTP at all; `origin` is scheme://host:port only."""

    reachable: bool
    origin: str | None  # None for a console route
    detail: str


def reachability(route: RouteSettings, client: httpx.Client) -> Reachability:
    """One HEAD request to the route's origin (never its secret path); any answer counts.

    Never raises for a network error; the route's URL and header values never appear.
    """
    if route.type is RouteType.CONSOLE or route.url is None:
        return Reachability(True, None, "prints to the console, nothing to reach")
    import httpx

    secrets = route_secrets(route)
    parts = urlsplit(route.url.get_secret_value())
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return Reachability(False, None, "the URL's port is not a number")
    host = parts.hostname or ""
    origin = f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    try:
        response = client.head(origin + "/")
    except httpx.TimeoutException:
        return Reachability(False, origin, f"{origin} did not answer in time")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = redact(str(exc), secrets) or type(exc).__name__
        return Reachability(False, origin, f"cannot reach {origin}: {detail}")
    return Reachability(True, origin, f"{origin} answers (HTTP {response.status_code})")
