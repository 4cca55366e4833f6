"""Connections to the monitored and the state database; errors translated, secrets redacted."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from checks import describe_pg_error, redact
from checks.pgerrors import config_hint, is_connection_loss, is_timeout
from config import (
    ConfigError,
    DatabaseUnavailable,
    DqError,
    QueryFailed,
    QueryTimeout,
    Settings,
    SetupError,
    StoreError,
    StoreUnavailable,
    format_duration,
)
from monitor.db.watchdog import ABANDONED, CANCELLED, Watchdog, WatchedConnection

APPLICATION_NAME = "dq-monitor"
GRANTS_HINT = 'see "Database grants" in the README'


@dataclass(frozen=True)
class Target:
    """One database as the user configured it: its URL, its role, and the setting that named it.

    `setting` is the variable the user actually set (DQ_DATABASE_URL when the state store
    lives in the monitored database), so every message points at something they can change.
    """

    url: SecretStr
    purpose: str  # "database" (the monitored one) or "state store"
    setting: str

    @property
    def is_store(self) -> bool:
        return self.purpose == "state store"

    @property
    def secrets(self) -> list[str]:
        return secrets_of(self.url)

    def describe(self, exc: BaseException) -> str:
        return redact(describe_pg_error(exc), self.secrets)


def _conninfo(raw: str) -> dict[str, str] | None:
    try:
        parsed = psycopg.conninfo.conninfo_to_dict(raw)
    except (psycopg.Error, ValueError):
        return None
    return {k: str(v) for k, v in parsed.items() if v is not None}


def secrets_of(url: SecretStr) -> list[str]:
    """The strings that must never be shown: the whole URL and its password, in every form
    the password can take (URL-encoded in a URL, plain in a `key=value` string)."""
    raw = url.get_secret_value()
    found = [raw]
    try:
        password = urlsplit(raw).password  # as written in a URL, percent-encoding and all
    except ValueError:
        password = None
    if password:
        found += [password, unquote(password)]
    parsed = _conninfo(raw)
    if parsed and parsed.get("password"):
        found.append(parsed["password"])
    return found


def safe_target(url: SecretStr) -> str:
    """host:port/dbname of a URL or `key=value` string, for messages (no user, no password)."""
    parsed = _conninfo(url.get_secret_value())
    if parsed is None:
        return "(unparsable URL)"
    host = parsed.get("host") or parsed.get("hostaddr") or "localhost"
    port = f":{parsed['port']}" if parsed.get("port") else ""
    return f"{host}{port}/{parsed.get('dbname') or '(default)'}"


def translate(exc: psycopg.Error, target: Target, action: str) -> DqError:
    """Turn a psycopg error raised while `action` into the exception tree, secrets removed.

    Lost or refused connections are *Unavailable (exit 3); a missing grant, table, column or
    schema is a SetupError (exit 2) that says where to fix it; a timeout is QueryTimeout
    (monitored database) or StoreError; anything else QueryFailed or StoreError.
    """
    where = f"the {target.purpose} at {safe_target(target.url)}"
    detail = target.describe(exc)
    if is_connection_loss(exc):
        unavailable = StoreUnavailable if target.is_store else DatabaseUnavailable
        return unavailable(
            f"lost {where} while {action}: {detail}; check that the server is up and "
            f"{target.setting} is right"
        )
    hint = config_hint(exc)
    if hint == "permission denied":
        return SetupError(
            f"{target.purpose}: {action}: {detail}; grant the monitor's role the rights it "
            f"needs ({GRANTS_HINT}), or run `dq-monitor doctor`"
        )
    if hint is not None:
        fix = (
            f"set state_schema, or check that {target.setting} names the right database"
            if target.is_store
            else "set tables.schema_name and the tables.* names in the config file "
            '(see "Configuration" in the README), or run `dq-monitor doctor`'
        )
        return SetupError(f"{target.purpose}: {action}: {detail}; {fix}")
    if is_timeout(exc) and not target.is_store:
        return QueryTimeout(f"{target.purpose}: {action}: cancelled: {detail}")
    if target.is_store:
        return StoreError(f"state store: {action} failed: {detail}")
    return QueryFailed(f"{target.purpose}: {action} failed: {detail}")


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
    target = Target(url, purpose, setting or _default_setting(purpose))
    try:
        conn = WatchedConnection.connect(
            url.get_secret_value(), **_connect_kwargs(connect_timeout, read_only)
        )
        conn.watchdog = watchdog
        return conn
    # `from None` on purpose: libpq may echo the connection string, password included, in the
    # original error, and a traceback or log of the cause would leak it.
    except psycopg.Error as exc:
        if not (isinstance(exc, psycopg.ProgrammingError) or _bad_option(exc)):
            raise _connect_failure(exc, target) from None
        raise ConfigError(
            f"{target.setting} is not a valid PostgreSQL URL: {target.describe(exc)}"
        ) from None


# libpq rejects a malformed option before it connects, as an OperationalError without SQLSTATE.
_BAD_OPTION = re.compile(r"\binvalid (?:[\w ]+ )?(?:value|option)\b|\bunrecognized value\b")


def _bad_option(exc: psycopg.Error) -> bool:
    return exc.sqlstate is None and bool(_BAD_OPTION.search(str(exc)))


def _connect_failure(exc: psycopg.Error, target: Target) -> DqError:
    if is_connection_loss(exc) or exc.sqlstate is None or exc.sqlstate.startswith("28"):
        unavailable = StoreUnavailable if target.is_store else DatabaseUnavailable
        return unavailable(
            f"cannot connect to the {target.purpose} at {safe_target(target.url)}: "
            f"{target.describe(exc)}; check that the server is up and {target.setting} is right"
        )
    return translate(exc, target, "connecting")


def store_setting(settings: Settings) -> str:
    """The variable that names the state store: its own when set, else the monitored one's."""
    return "DQ_STATE_DATABASE_URL" if settings.state_database_url else "DQ_DATABASE_URL"


def _default_setting(purpose: str) -> str:
    return "DQ_STATE_DATABASE_URL" if purpose == "state store" else "DQ_DATABASE_URL"


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
        setting: str | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.url = url
        self.purpose = purpose
        self.target = Target(url, purpose, setting or _default_setting(purpose))
        self.connect_timeout = connect_timeout
        self.read_only = read_only
        self.watchdog = watchdog
        self._pool: ConnectionPool[WatchedConnection] | None = None
        self._single: WatchedConnection | None = None
        if pool_size:
            if _conninfo(url.get_secret_value()) is None:
                # The pool would only log the parse error, over and over, in the background.
                raise ConfigError(f"{self.target.setting} is not a valid PostgreSQL URL")
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
            self._single = connect(
                self.url,
                purpose=self.purpose,
                connect_timeout=self.connect_timeout,
                read_only=self.read_only,
                setting=self.target.setting,
                watchdog=self.watchdog,
            )
        return self._single

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
