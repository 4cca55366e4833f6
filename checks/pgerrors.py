"""Read psycopg errors at the boundary: SQLSTATE, the server's message, and what kind of failure."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg

# Names and grants the configuration controls: an error here means "fix the config".
_CONFIG_SQLSTATES = {
    "42P01": "table does not exist",
    "42703": "column does not exist",
    "3F000": "schema does not exist",
    "42501": "permission denied",
    "42883": "operator or function does not match the column types",
}


def describe(exc: BaseException) -> str:
    """`primary message (SQLSTATE xxxxx)` for a server error, else the first line of the text."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        return f"{exc.diag.message_primary}{state}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_timeout(exc: BaseException) -> bool:
    """statement_timeout or lock_timeout cancelled the query; test it before connection loss."""
    return isinstance(exc, pg.QueryCanceled | pg.LockNotAvailable)


def is_connection_loss(exc: BaseException) -> bool:
    """The server could not be reached or went away; retrying later may succeed."""
    if is_timeout(exc):
        return False
    if isinstance(exc, pg.AdminShutdown | pg.CannotConnectNow | pg.ConnectionException):
        return True
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return True  # libpq-level failure: refused, reset, closed, DNS
    return isinstance(exc, psycopg.InterfaceError)


def is_recovery_conflict(exc: BaseException) -> bool:
    """A hot standby cancelled the query because replaying the primary's WAL needed what it
    held (rows vacuumed away, a lock): SQLSTATE 40001 or 40P01, "conflict with recovery"."""
    return (
        isinstance(exc, psycopg.Error)
        and exc.sqlstate in ("40001", "40P01")
        and "conflict with recovery" in (exc.diag.message_primary or "")
    )


# A text value the client encoding (always UTF8, see monitor/db/connections.py) cannot carry.
_ENCODING_SQLSTATES = {"22021", "22P05"}  # character_not_in_repertoire, untranslatable


def is_encoding_error(exc: BaseException) -> bool:
    """The server could not send a stored text value as UTF-8 (e.g. a SQL_ASCII database
    holding other bytes)."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in _ENCODING_SQLSTATES


def config_hint(exc: BaseException) -> str | None:
    """What kind of configuration mistake a server error points to, if any."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate in _CONFIG_SQLSTATES:
        return _CONFIG_SQLSTATES[exc.sqlstate]
    return None

