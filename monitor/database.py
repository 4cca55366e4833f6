"""Connections to the monitored and the state database; errors translated, secrets redacted."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from checks import describe_pg_error, is_connection_loss, is_timeout, redact
from config import (
    ConfigError,
    DatabaseUnavailable,
    DqError,
    QueryFailed,
    QueryTimeout,
    StoreError,
    StoreUnavailable,
)

APPLICATION_NAME = "dq-monitor"


def _conninfo(raw: str) -> dict[str, Any]:
    """libpq's own reading of a URL or a key=value string; {} when it cannot be parsed."""
    try:
        return psycopg.conninfo.conninfo_to_dict(raw)
    except (psycopg.Error, ValueError):
        return {}


def secrets_of(url: SecretStr) -> list[str]:
    """The strings that must never be shown: the whole URL and its password."""
    raw = url.get_secret_value()
    found = [raw]
    try:
        password = urlsplit(raw).password  # as written in a URL, percent-encoding and all
    except ValueError:
        password = None
    # libpq's reading also covers key=value strings ("host=db password=...").
    found += [p for p in (password, _conninfo(raw).get("password")) if p]
    return found


def safe_target(url: SecretStr) -> str:
    """host:port/dbname of a URL or key=value string, for messages (no user, no password)."""
    raw = url.get_secret_value()
    if "://" not in raw:  # a key=value string: urlsplit would see it all as a path
        info = _conninfo(raw)
        if not info and raw.strip():
            return "(unparsable URL)"
        port = f":{info['port']}" if info.get("port") else ""
        return f"{info.get('host') or 'localhost'}{port}/{info.get('dbname') or '(default)'}"
    try:
        parts = urlsplit(raw)
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


class Inspector:
    """Read-only queries on one connection, psycopg errors translated at this boundary.

    `purpose` is "database" or "state store"; it picks the errors raised: QueryFailed,
    QueryTimeout and DatabaseUnavailable, or StoreError and StoreUnavailable.
    """

    def __init__(self, conn: psycopg.Connection[Any], url: SecretStr, purpose: str) -> None:
        self.conn = conn
        self.url = url
        self.purpose = purpose
        self.lost = False  # set once the connection is gone; later queries would fail too

    def rows(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of a query. Raises the purpose's errors (see the class)."""
        found: list[Any] = self.call(lambda conn: conn.execute(query, params).fetchall())
        return found

    def value(self, query: str | sql.SQL | sql.Composed, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None. Raises the purpose's errors."""
        found = self.rows(query, params)
        return found[0][0] if found else None

    def call(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """Run `work` on the connection. Raises the purpose's errors."""
        try:
            return work(self.conn)
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def attempt(self, query: str) -> tuple[str, str] | None:
        """Run a query whose failure is an answer: (SQLSTATE, message) when it fails, else None.

        A timeout or a lost connection still raises (see the class).
        """
        try:
            self.conn.execute(query).fetchall()
        except psycopg.Error as exc:
            if is_timeout(exc) or is_connection_loss(exc):
                raise self._translate(exc) from exc
            return exc.sqlstate or "", self._describe(exc)
        return None

    def ident(self, *names: str) -> str:
        """A quoted (schema-qualified) name, for statements shown to people."""
        return sql.Identifier(*names).as_string(self.conn)

    def _describe(self, exc: BaseException) -> str:
        return redact(describe_pg_error(exc), secrets_of(self.url))

    def _translate(self, exc: psycopg.Error) -> DqError:
        store = self.purpose == "state store"
        detail = self._describe(exc)
        if is_timeout(exc):
            return (StoreError if store else QueryTimeout)(f"the query timed out: {detail}")
        if is_connection_loss(exc):
            self.lost = True
            lost = StoreUnavailable if store else DatabaseUnavailable
            return lost(f"lost the connection to the {self.purpose}: {detail}")
        return (StoreError if store else QueryFailed)(f"the query failed: {detail}")


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
        "connect_timeout": max(1, int(connect_timeout.total_seconds())),
        "options": "-c default_transaction_read_only=on" if read_only else "",
        # Notice a dead server or network within seconds, not the kernel's two hours.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
