"""Alertmanager's own API: postable alerts for /api/v2/alerts, sent to every Alertmanager."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from checks import JsonValue
from config import RouteSettings, redact

from .clock import Clock
from .delivery import Outcome, Reachability, classify
from .labels import alert_labels, generator_url
from .notification import Kind, Notification
from .secrets import route_secrets
from .webhook import alert_annotations, rfc3339

if TYPE_CHECKING:  # loaded by the functions that send
    import httpx

log = logging.getLogger(__name__)

API_PATH = "/api/v2/alerts"
READY_PATH = "/-/ready"
#: Prometheus's rule (rules/alerting.go, ValidUntil = 4 x resend delay): a firing alert is
#: valid for four re-send intervals, so a missed re-send or two changes nothing, and the
#: alerts of a dq-monitor that died resolve by themselves in Alertmanager.
VALID_FOR_RESENDS = 4

#: One POST's answer from one Alertmanager: its origin (scheme://host:port) and the outcome.
Answer = tuple[str, Outcome]


def postable_alert(n: Notification, now: dt.datetime, resend: dt.timedelta) -> dict[str, JsonValue]:
    """One alert of the /api/v2/alerts body (the OpenAPI postableAlert), as sent at `now`.

    Firing: endsAt `now` + 4 x `resend`, so Alertmanager keeps it active until the next
    re-sends stop coming. Resolved: endsAt is the resolve time. A test message is already
    resolved (startsAt = endsAt = now): Alertmanager accepts it and notifies no receiver.
    Pure; raises nothing.
    """
    if n.kind is Kind.TEST:
        starts, ends = now, now
    elif n.kind is Kind.RESOLVED:
        starts, ends = n.active_since, n.ended_at or n.created_at
    else:
        starts, ends = n.active_since, now + VALID_FOR_RESENDS * resend
    alert: dict[str, JsonValue] = {
        "labels": dict(alert_labels(n)),
        "annotations": alert_annotations(n, omit_empty=True),
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(max(starts, ends)),  # Alertmanager refuses an end before the start
    }
    link = generator_url(n.external_url, n.check, n.database)
    if link:  # the schema's format is uri: leave it out rather than send ""
        alert["generatorURL"] = link
    return alert


def alerts_body(
    messages: Sequence[Notification], now: dt.datetime, resend: dt.timedelta
) -> list[JsonValue]:
    """The JSON list POSTed to /api/v2/alerts: one postable alert per message."""
    return [postable_alert(n, now, resend) for n in messages]


def origin(url: str) -> str:
    """scheme://host:port of an Alertmanager URL: what logs and errors may show of it."""
    import httpx

    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = parsed.host
    return f"{parsed.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _endpoint(base: str, path: str) -> str:
    """`path` under an Alertmanager's base URL (which may carry a --web.route-prefix)."""
    return base.rstrip("/") + path


def post_alerts(
    route: RouteSettings, body: list[JsonValue], client: Callable[[], httpx.Client], clock: Clock
) -> list[Answer]:
    """POST `body` to /api/v2/alerts of each of the route's Alertmanagers, one after the
    other; never raises for an answer or a network error, and never shows a URL's secrets."""
    import httpx

    secrets = route_secrets(route)
    headers = {"Content-Type": "application/json",
               **{k: v.get_secret_value() for k, v in route.headers.items()}}  # fmt: skip
    answers: list[Answer] = []
    for url in route.endpoints:
        base = url.get_secret_value()
        where = origin(base)
        try:
            response = client().post(_endpoint(base, API_PATH), json=body, headers=headers)
        except httpx.TimeoutException:
            outcome = Outcome(False, reason="network error: no answer in time")
        except (httpx.InvalidURL, UnicodeError):  # settings validate; this is what httpx refuses
            outcome = Outcome(False, permanent=True, reason="the url or headers cannot be sent")
        except httpx.HTTPError as exc:
            detail = redact(str(exc), secrets) or type(exc).__name__
            outcome = Outcome(False, reason=f"network error: {detail}")
        else:
            outcome = classify(response, secrets, clock.now())
        answers.append((where, outcome))
    return answers


def combined(answers: Sequence[Answer]) -> Outcome:
    """Delivered when at least one Alertmanager accepted (a cluster shares what one got);
    otherwise permanent only if every answer was, waiting the longest Retry-After asked."""
    accepted = [outcome for _, outcome in answers if outcome.delivered]
    if accepted:
        return accepted[0]
    reason = "; ".join(f"Alertmanager {where}: {outcome.reason}" for where, outcome in answers)
    waits = [o.retry_after for _, o in answers if o.retry_after is not None]
    return Outcome(
        delivered=False,
        permanent=all(outcome.permanent for _, outcome in answers),
        retry_after=max(waits) if waits else None,
        status=answers[-1][1].status if answers else None,
        reason=reason or "no Alertmanager configured",
    )


def deliver_alertmanager(
    route: RouteSettings,
    message: Notification,
    client: Callable[[], httpx.Client],
    *,
    clock: Clock,
) -> Outcome:
    """Post one outbox message to every Alertmanager of `route`; delivered when one took it.

    The Alertmanagers that failed while another accepted are logged by origin only; a firing
    alert reaches them with the next re-send. Never raises for an answer or network error.
    """
    body = alerts_body([message], clock.now(), route.resend_every)
    answers = post_alerts(route, body, client, clock)
    outcome = combined(answers)
    if outcome.delivered:
        for where, failed in answers:
            if not failed.delivered:
                log.warning("alert to route %s: Alertmanager %s: %s (another one accepted it)",
                            route.name, where, failed.reason)  # fmt: skip
    return outcome


def readiness(route: RouteSettings, client: httpx.Client) -> list[Reachability]:
    """GET /-/ready of each Alertmanager of `route` (with the route's headers); ready means
    HTTP 200. Shows origins only; never raises for a network error."""
    import httpx

    secrets = route_secrets(route)
    headers = {k: v.get_secret_value() for k, v in route.headers.items()}
    found = []
    for url in route.endpoints:
        base = url.get_secret_value()
        where = origin(base)
        try:
            response = client.get(_endpoint(base, READY_PATH), headers=headers)
        except httpx.TimeoutException:
            found.append(Reachability(False, where, f"{where} did not answer in time"))
            continue
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            detail = redact(str(exc), secrets) or type(exc).__name__
            found.append(Reachability(False, where, f"cannot reach {where}: {detail}"))
            continue
        code = response.status_code
        if code == 200:
            found.append(Reachability(True, where, f"{where} is ready (HTTP 200)"))
        else:
            detail = f"{where}{READY_PATH} answers HTTP {code}, not 200 (not ready, or refused)"
            found.append(Reachability(False, where, detail))
    return found
