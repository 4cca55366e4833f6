"""The alert channels by route type: how one message becomes an HTTP request (or a line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from checks import JsonValue
from config import RouteSettings, RouteType

from .notification import Notification
from .slack import slack_payload
from .webhook import webhook_headers, webhook_payload

#: A channel's request: the JSON body and the headers of the POST to the route's URL.
Request = tuple[dict[str, JsonValue], dict[str, str]]


@dataclass(frozen=True)
class Channel:
    """One kind of receiver. `request` is None for a channel that prints instead of posting."""

    request: Callable[[Notification, RouteSettings], Request] | None


def _slack(message: Notification, route: RouteSettings) -> Request:
    return slack_payload(message), {"Content-Type": "application/json"}


def _webhook(message: Notification, route: RouteSettings) -> Request:
    headers = {**webhook_headers(message),
               **{k: v.get_secret_value() for k, v in route.headers.items()}}  # fmt: skip
    return webhook_payload(message, route.name), headers


#: Every route type's channel. Adding a channel: a RouteType value (config/alerts.py), a
#: module here that renders the body, one entry below, its tests and its README row.
CHANNELS: Mapping[RouteType, Channel] = MappingProxyType({
    RouteType.SLACK: Channel(_slack),
    RouteType.WEBHOOK: Channel(_webhook),
    RouteType.CONSOLE: Channel(None),
})  # fmt: skip
