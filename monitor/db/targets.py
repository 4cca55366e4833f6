"""Which database a connection is for, how it is named safely, and how its errors read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from pydantic import SecretStr

from checks import describe_pg_error
from checks.pgerrors import config_hint, is_connection_loss, is_timeout
from config import (
    DatabaseUnavailable,
    DqError,
    QueryFailed,
    QueryTimeout,
    Settings,
    SetupError,
    StoreError,
    StoreUnavailable,
    redact,
)

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


def parse_conninfo(raw: str) -> dict[str, str] | None:
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
    parsed = parse_conninfo(raw)
    if parsed and parsed.get("password"):
        found.append(parsed["password"])
    return found


def safe_target(url: SecretStr) -> str:
    """host:port/dbname of a URL or `key=value` string, for messages (no user, no password)."""
    parsed = parse_conninfo(url.get_secret_value())
    if parsed is None:
        return "(unparsable URL)"
    host = parsed.get("host") or parsed.get("hostaddr") or "localhost"
    port = f":{parsed['port']}" if parsed.get("port") else ""
    return f"{host}{port}/{parsed.get('dbname') or '(default)'}"


def server_address(url: SecretStr) -> str:
    """host:port of a URL or `key=value` string: how a report names a server (no database,
    user or password)."""
    parsed = parse_conninfo(url.get_secret_value())
    if parsed is None:
        return "(unparsable URL)"
    host = parsed.get("host") or parsed.get("hostaddr") or "localhost"
    return f"{host}:{parsed.get('port') or 5432}"


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
            '(see the Configuration reference in docs/configuration.md), or run `dq-monitor doctor`'
        )
        return SetupError(f"{target.purpose}: {action}: {detail}; {fix}")
    if is_timeout(exc) and not target.is_store:
        return QueryTimeout(f"{target.purpose}: {action}: cancelled: {detail}")
    if target.is_store:
        return StoreError(f"state store: {action} failed: {detail}")
    return QueryFailed(f"{target.purpose}: {action} failed: {detail}")



# libpq rejects a malformed option before it connects, as an OperationalError without SQLSTATE.
_BAD_OPTION = re.compile(r"\binvalid (?:[\w ]+ )?(?:value|option)\b|\bunrecognized value\b")


def is_bad_option(exc: psycopg.Error) -> bool:
    return exc.sqlstate is None and bool(_BAD_OPTION.search(str(exc)))


def connect_failure(exc: psycopg.Error, target: Target) -> DqError:
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


def default_setting(purpose: str) -> str:
    return "DQ_STATE_DATABASE_URL" if purpose == "state store" else "DQ_DATABASE_URL"


