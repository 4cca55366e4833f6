"""Connections to the monitored and the state database; errors translated, secrets redacted."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import psycopg
from pydantic import SecretStr

from checks import describe_pg_error, redact
from config import ConfigError, DatabaseUnavailable, StoreUnavailable

APPLICATION_NAME = "dq-monitor"


def secrets_of(url: SecretStr) -> list[str]:
    """The strings that must never be shown: the whole URL and its password."""
    raw = url.get_secret_value()
    found = [raw]
    try:
        password = urlsplit(raw).password
    except ValueError:
        password = None
    if password:
        found.append(password)
    return found


def safe_target(url: SecretStr) -> str:
    """host:port/dbname of a URL, for messages (no user, no password)."""
    try:
        parts = urlsplit(url.get_secret_value())
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        name = parts.path.lstrip("/") or "(default)"
    except ValueError:
        return "(unparsable URL)"
    return f"{host}{port}/{name}"


def connect(
    url: SecretStr,
    *,
    purpose: str,
    connect_timeout: dt.timedelta,
    read_only: bool = False,
) -> psycopg.Connection[Any]:
    """Open an autocommit connection tagged application_name=dq-monitor.

    `purpose` is "database" (the monitored one) or "state store".
    Raises DatabaseUnavailable or StoreUnavailable, with no secret in the message.
    """
    unavailable = StoreUnavailable if purpose == "state store" else DatabaseUnavailable
    setting = "DQ_STATE_DATABASE_URL" if purpose == "state store" else "DQ_DATABASE_URL"
    options = "-c default_transaction_read_only=on" if read_only else ""
    try:
        return psycopg.connect(
            url.get_secret_value(),
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=max(1, int(connect_timeout.total_seconds())),
            options=options,
        )
    # `from None` on purpose: libpq may echo the connection string, password included, in the
    # original error, and a traceback or log of the cause would leak it.
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"{setting} is not a valid PostgreSQL URL: "
            f"{redact(describe_pg_error(exc), secrets_of(url))}"
        ) from None
    except psycopg.Error as exc:
        detail = redact(describe_pg_error(exc), secrets_of(url))
        raise unavailable(
            f"cannot connect to the {purpose} at {safe_target(url)}: {detail}; "
            f"check that the server is up and {setting} is right"
        ) from None
