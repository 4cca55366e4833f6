"""Every secret in the settings, in each form an error or a log line could echo it."""

from __future__ import annotations

from alerts import route_secrets, url_secrets
from config import Settings
from monitor.db import secrets_of


def settings_secrets(settings: Settings) -> list[str]:
    """Every form of every secret in `settings`: database passwords and URLs (every monitored
    database's and its standbys', the state database's), each route's URL and header values,
    the heartbeat URL. Logs and the status page mask them all."""
    found: list[str] = []
    urls = [settings.database_url, settings.state_database_url]
    for database in settings.databases:
        urls += [database.url, *database.standby_urls]
    for url in urls:
        if url is not None:
            found += secrets_of(url)
    for route in settings.alerts.routes:
        found += route_secrets(route)
    if settings.alerts.heartbeat_url is not None:
        found += url_secrets(settings.alerts.heartbeat_url.get_secret_value())
    return found
