"""Connections to the monitored and the state database; errors translated, secrets redacted."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from checks import describe_pg_error, redact
from config import ConfigError, DatabaseUnavailable, DqError, StoreUnavailable

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
    try:
        return psycopg.connect(
            url.get_secret_value(), **_connect_kwargs(connect_timeout, read_only)
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


class ConnectionSource:
    """Hands out connections to one database; the CLI keeps one, the service pools them."""

    def __init__(
        self,
        url: SecretStr,
        *,
        purpose: str,
        connect_timeout: dt.timedelta,
        read_only: bool = False,
        pool_size: int = 0,
    ) -> None:
        self.url = url
        self.purpose = purpose
        self.connect_timeout = connect_timeout
        self.read_only = read_only
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._single: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._active: set[psycopg.Connection[Any]] = set()
        if pool_size:
            self._pool = ConnectionPool(
                url.get_secret_value(),
                kwargs=_connect_kwargs(connect_timeout, read_only),
                min_size=1,
                max_size=pool_size,
                open=False,
                check=ConnectionPool.check_connection,
                timeout=connect_timeout.total_seconds(),
                name=f"dq-monitor {purpose}",
                num_workers=1,
            )
            # Opening does not wait: the service must start (and serve /healthz) while a
            # database is down; connection() reports unavailability per use instead.
            self._pool.open(wait=False)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one unit of work.

        Raises DatabaseUnavailable or StoreUnavailable (by purpose) when none can be had.
        """
        conn = self._acquire_single() if self._pool is None else None
        if conn is not None:
            yield from self._tracked(conn)
            return
        assert self._pool is not None
        try:
            ctx = self._pool.connection()
            conn = ctx.__enter__()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            yield from self._tracked(conn)
        except BaseException as exc:
            if not ctx.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            ctx.__exit__(None, None, None)

    def _tracked(self, conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            self._active.add(conn)
        try:
            yield conn
        finally:
            with self._lock:
                self._active.discard(conn)

    def cancel_all(self) -> None:
        """Cancel the queries running on this source's connections (used at shutdown)."""
        with self._lock:
            active = list(self._active)
        for conn in active:
            with suppress(Exception):
                conn.cancel_safe(timeout=2)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close(timeout=5)
        if self._single is not None:
            self._single.close()
            self._single = None

    def _acquire_single(self) -> psycopg.Connection[Any]:
        if self._single is None or self._single.closed or self._single.broken:
            if self._single is not None:
                self._single.close()
            self._single = connect(
                self.url,
                purpose=self.purpose,
                connect_timeout=self.connect_timeout,
                read_only=self.read_only,
            )
        return self._single

    def _unavailable(self, exc: BaseException) -> DqError:
        unavailable = StoreUnavailable if self.purpose == "state store" else DatabaseUnavailable
        detail = redact(describe_pg_error(exc), secrets_of(self.url))
        return unavailable(
            f"cannot get a connection to the {self.purpose} at {safe_target(self.url)}: {detail}"
        )


def _connect_kwargs(connect_timeout: dt.timedelta, read_only: bool) -> dict[str, Any]:
    return {
        "autocommit": True,
        "application_name": APPLICATION_NAME,
        # From a SQL_ASCII server psycopg reads text as bytes and sends them back as bytea
        # (`text = bytea`); with UTF8 the server passes the bytes through and text stays str.
        "client_encoding": "UTF8",
        "connect_timeout": max(1, int(connect_timeout.total_seconds())),
        "options": "-c default_transaction_read_only=on" if read_only else "",
        # Notice a dead server or network within seconds, not the kernel's two hours.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
