"""Connections to the monitored and the state database; errors translated, secrets redacted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from pydantic import SecretStr

from config import (
    ConfigError,
    DatabaseUnavailable,
    DqError,
    QueryTimeout,
    StoreError,
    StoreUnavailable,
    format_duration,
)
from monitor.db.targets import (
    APPLICATION_NAME,
    Target,
    connect_failure,
    default_setting,
    is_bad_option,
    parse_conninfo,
    safe_target,
    translate,
)
from monitor.db.watchdog import ABANDONED, CANCELLED, Watchdog, WatchedConnection

if TYPE_CHECKING:  # only the service pools; a command keeps one connection per database
    from psycopg_pool import ConnectionPool


def connect(
    url: SecretStr,
    *,
    purpose: str,
    connect_timeout: dt.timedelta,
    read_only: bool = False,
    setting: str | None = None,
    watchdog: Watchdog | None = None,
) -> WatchedConnection:
    """Open an autocommit connection tagged application_name=dq-monitor.

    `purpose` is "database" (the monitored one) or "state store"; `setting` the variable
    that holds the URL; `watchdog`, if given, bounds every wait for the server (see
    monitor.db.watchdog). Raises ConfigError for a malformed URL, DatabaseUnavailable or
    StoreUnavailable when the server cannot be reached; no secret in any message.
    """
    target = Target(url, purpose, setting or default_setting(purpose))
    try:
        conn = WatchedConnection.connect(
            url.get_secret_value(), **_connect_kwargs(connect_timeout, read_only)
        )
        conn.watchdog = watchdog
        return conn
    # `from None` on purpose: libpq may echo the connection string, password included, in the
    # original error, and a traceback or log of the cause would leak it.
    except psycopg.Error as exc:
        if not (isinstance(exc, psycopg.ProgrammingError) or is_bad_option(exc)):
            raise connect_failure(exc, target) from None
        raise ConfigError(
            f"{target.setting} is not a valid PostgreSQL URL: {target.describe(exc)}"
        ) from None



class ConnectionSource:
    """Hands out connections to one database; the CLI keeps one, the service pools them.

    It is the boundary for everything done on those connections: a psycopg error raised
    inside `connection()` leaves it translated into the exception tree. With a `watchdog`,
    every wait for the server on its connections is bounded (see monitor.db.watchdog).
    """

    def __init__(
        self,
        url: SecretStr,
        *,
        purpose: str,
        connect_timeout: dt.timedelta,
        read_only: bool = False,
        pool_size: int = 0,
        per_use: bool = False,
        setting: str | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.url = url
        # A connection per connection() call, closed after it (the service with several
        # databases: no idle session on any monitored server, and what is open at once is
        # what runs at once). Takes precedence over pool_size.
        self.per_use = per_use
        if per_use:
            pool_size = 0
        self.purpose = purpose
        self.target = Target(url, purpose, setting or default_setting(purpose))
        self.connect_timeout = connect_timeout
        self.read_only = read_only
        self.watchdog = watchdog
        self._pool: ConnectionPool[WatchedConnection] | None = None
        self._single: WatchedConnection | None = None
        if pool_size:
            if parse_conninfo(url.get_secret_value()) is None:
                # The pool would only log the parse error, over and over, in the background.
                raise ConfigError(f"{self.target.setting} is not a valid PostgreSQL URL")
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(
                url.get_secret_value(),
                connection_class=WatchedConnection,
                kwargs=_connect_kwargs(connect_timeout, read_only),
                configure=watchdog.watch if watchdog else None,
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
    def connection(self, action: str = "querying") -> Iterator[psycopg.Connection[Any]]:
        """A connection for one unit of work, `action` naming it in error messages.

        Raises DatabaseUnavailable or StoreUnavailable (by purpose) when none can be had or
        the server stopped answering (the watchdog abandoned the connection), QueryTimeout or
        StoreError when the watchdog had to cancel a query, and the translation of any other
        psycopg error the work raises (see `translate`).
        """
        used: list[WatchedConnection] = []
        try:
            with self._checked_out() as conn:
                conn.intervention = None
                used.append(conn)
                yield conn
        except psycopg.Error as exc:
            raise self._intervened(used, action) or translate(exc, self.target, action) from exc
        except DqError as exc:  # the work translated the error itself (a check's probe)
            stalled = self._intervened(used, action)
            if stalled is None:
                raise
            raise stalled from exc

    def _intervened(self, used: list[WatchedConnection], action: str) -> DqError | None:
        """The error to raise instead when the watchdog cancelled or abandoned a query."""
        what = used[0].intervention if used else None
        if what is None or self.watchdog is None:
            return None
        where = f"the {self.purpose} at {safe_target(self.url)}"
        limit = format_duration(dt.timedelta(seconds=round(self.watchdog.limit)))
        if what == ABANDONED:
            unavailable = StoreUnavailable if self.target.is_store else DatabaseUnavailable
            return unavailable(
                f"{where} stopped answering while {action}: no reply within {limit} "
                "(statement_timeout + query_grace), nor to a cancel request, so dq-monitor gave "
                f"up on the connection; check the server and the network to it "
                f"({self.target.setting})"
            )
        assert what == CANCELLED
        timeout = StoreError if self.target.is_store else QueryTimeout
        return timeout(
            f"{where} did not answer within {limit} (statement_timeout + query_grace) while "
            f"{action}; the query was cancelled"
        )

    @contextmanager
    def _checked_out(self) -> Iterator[WatchedConnection]:
        if self.per_use:
            conn = self._open()
            try:
                yield conn
            finally:
                conn.close()
            return
        if self._pool is None:
            yield self._acquire_single()
            return
        try:
            ctx = self._pool.connection()
            conn = ctx.__enter__()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            yield conn
        except BaseException as exc:
            if not ctx.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            ctx.__exit__(None, None, None)

    def cancel_all(self) -> None:
        """Cancel the queries running on this source's connections and any started later
        (used at shutdown); one whose cancel gets no answer within a second is abandoned.
        Never blocks."""
        if self.watchdog is not None:
            self.watchdog.interrupt()

    def close(self) -> None:
        """Close the connections; a connection still in use is left to its thread."""
        if self._pool is not None:
            # Short: a pool worker stuck connecting to a silent server is a daemon thread.
            self._pool.close(timeout=1)
        if self._single is not None:
            self._single.close()
            self._single = None
        if self.watchdog is not None:
            self.watchdog.close()

    def _acquire_single(self) -> WatchedConnection:
        if self._single is None or self._single.closed or self._single.broken:
            if self._single is not None:
                self._single.close()
            self._single = self._open()
        return self._single

    def _open(self) -> WatchedConnection:
        return connect(
            self.url,
            purpose=self.purpose,
            connect_timeout=self.connect_timeout,
            read_only=self.read_only,
            setting=self.target.setting,
            watchdog=self.watchdog,
        )

    def _unavailable(self, exc: BaseException) -> DqError:
        unavailable = StoreUnavailable if self.target.is_store else DatabaseUnavailable
        return unavailable(
            f"cannot get a connection to the {self.purpose} at {safe_target(self.url)}: "
            f"{self.target.describe(exc)}; check that the server is up and "
            f"{self.target.setting} is right"
        )


def _connect_kwargs(connect_timeout: dt.timedelta, read_only: bool) -> dict[str, Any]:
    """libpq options of every connection dq-monitor opens, pooled or single, either database."""
    return {
        "autocommit": True,
        "application_name": APPLICATION_NAME,
        # From a SQL_ASCII server psycopg reads text as bytes and sends them back as bytea
        # (`text = bytea`); with UTF8 the server passes the bytes through and text stays str.
        "client_encoding": "UTF8",
        "connect_timeout": max(1, int(connect_timeout.total_seconds())),
        "options": "-c default_transaction_read_only=on" if read_only else "",
        # Notice a dead server or network within seconds, not the kernel's two hours: an idle
        # or waiting connection is probed after 10 s, then every 5 s ...
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        # ... and data (a query, a probe) the server's host has not acknowledged for
        # connect_timeout drops the connection. Neither notices a server that acknowledges
        # but never answers; the watchdog (monitor.db.watchdog) covers that.
        "tcp_user_timeout": max(1000, int(connect_timeout.total_seconds() * 1000)),
    }

