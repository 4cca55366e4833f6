"""The alert channels by route type: how one message becomes an HTTP request (or a line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from checks import JsonValue
from config import RouteSettings, RouteType

from .clock import Clock
from .notification import Notification
from .slack import slack_payload
from .webhook import webhook_headers, webhook_payload

if TYPE_CHECKING:
    import httpx

    from .delivery import Outcome

#: A channel's request: the JSON body and the headers of the POST to the route's URL.
Request = tuple[dict[str, JsonValue], dict[str, str]]
#: A channel that sends by itself (several receivers per route): route, message, the HTTP
#: client's factory and the clock in, the delivery's outcome out.
Send = Callable[[RouteSettings, Notification, Callable[[], "httpx.Client"], Clock], "Outcome"]


@dataclass(frozen=True)
class Channel:
    """One kind of receiver. `request` is None for a channel that prints instead of posting;
    `send`, when set, delivers in its own way (and `request` is not used)."""

    request: Callable[[Notification, RouteSettings], Request] | None
    send: Send | None = None


def _slack(message: Notification, route: RouteSettings) -> Request:
    return slack_payload(message), {"Content-Type": "application/json"}


def _webhook(message: Notification, route: RouteSettings) -> Request:
    headers = {**webhook_headers(message),
               **{k: v.get_secret_value() for k, v in route.headers.items()}}  # fmt: skip
    return webhook_payload(message, route.name), headers


def _alertmanager(
    route: RouteSettings, message: Notification, client: Callable[[], httpx.Client], clock: Clock
) -> Outcome:
    # Imported here: alertmanager.py classifies answers with delivery.py, which reads CHANNELS.
    from .alertmanager import deliver_alertmanager

    return deliver_alertmanager(route, message, client, clock=clock)


#: Every route type's channel. Adding a channel: a RouteType value (config/alerts.py), a
#: module here that renders the body, one entry below, its tests and its row in docs/alerts.md.
CHANNELS: Mapping[RouteType, Channel] = MappingProxyType({
    RouteType.SLACK: Channel(_slack),
    RouteType.WEBHOOK: Channel(_webhook),
    RouteType.CONSOLE: Channel(None),
    RouteType.ALERTMANAGER: Channel(None, send=_alertmanager),  # a list to each Alertmanager
})  # fmt: skip
