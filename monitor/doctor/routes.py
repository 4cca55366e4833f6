"""The doctor's items for the alert routes: does each receiver answer HTTP?"""

from __future__ import annotations

import httpx

from alerts import Reachability, http_client, reachability, readiness
from config import RouteSettings, RouteType, Settings
from monitor.doctor.items import DoctorItem, ok, problem


def route_items(settings: Settings, client: httpx.Client | None = None) -> list[DoctorItem]:
    """Whether each alert route's receiver answers HTTP (each Alertmanager of a route is ready);
    shows only scheme://host:port."""
    routes = settings.alerts.routes
    if not routes:
        return [ok("routes", "no alert routes are configured")]
    own = client is None
    client = client or http_client(settings.alerts.request_timeout.total_seconds())
    items = []
    try:
        for route in routes:
            for found in _answers(route, client):
                detail = f"{route.type.value}: {found.detail}"
                if found.reachable:
                    items.append(ok(f"route.{route.name}", detail))
                else:
                    items.append(problem(f"route.{route.name}", detail, _route_hint(route.name)))
    finally:
        if own:
            client.close()
    return items


def _answers(route: RouteSettings, client: httpx.Client) -> list[Reachability]:
    # Each Alertmanager says whether it is ready at /-/ready; other receivers answer a HEAD.
    if route.type is RouteType.ALERTMANAGER:
        return readiness(route, client)
    return [reachability(route, client)]


def _route_hint(name: str) -> str:
    return (
        "check DNS, firewall and proxy settings (HTTPS_PROXY, NO_PROXY) on this host; then "
        f"`dq-monitor alerts test --route {name}` sends a real test message"
    )
