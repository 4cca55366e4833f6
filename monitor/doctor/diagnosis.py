"""`dq-monitor doctor`'s diagnosis: can this deployment read what it needs? It never writes."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
from pydantic import SecretStr

from config import NO_DATABASE, ConfigError, DqError, Settings, redact, url_setting
from monitor.app import state_setting
from monitor.db import Inspector, connect, safe_target, secrets_of
from monitor.doctor.items import DoctorItem, Step, ok, problem, run_steps, skipped
from monitor.doctor.monitored import MonitoredDiagnosis
from monitor.doctor.routes import route_items
from monitor.doctor.standbys import standby_items
from monitor.doctor.state import StateDiagnosis

_QUOTED_ROLE = re.compile(r'\b(user|role) "[^"]*"')


def diagnose(
    settings: Settings, *, routes: bool = False, client: httpx.Client | None = None
) -> list[DoctorItem]:
    """Every item: each monitored database and its state store (schema), then (if asked)
    the alert routes. With several databases, each item's name starts with its database's
    (`eu/database.connection`).

    Problems are items, not exceptions: an unreachable database is one problem item and one
    skipped item. Raises ConfigError only when no database URL is set.
    """
    monitored = settings.monitored()
    if not monitored:
        raise ConfigError(NO_DATABASE)
    items: list[DoctorItem] = []
    listed = bool(settings.databases)
    state_named = state_setting(settings)
    for database in monitored:
        names = (url_setting(database.name, listed), state_named)
        found = _diagnose_one(settings.for_database(database.name), names)
        if len(monitored) > 1:
            found = [replace(i, name=f"{database.name}/{i.name}") for i in found]
        items += found
    if routes:
        items += route_items(settings, client)
    return items


def _diagnose_one(settings: Settings, setting: tuple[str, str]) -> list[DoctorItem]:
    """One database's items: its own, then its state store's (raises nothing); `setting`
    names the two URLs' settings for the hints."""
    url = settings.database_url
    assert url is not None
    state_url = settings.state_database_url
    items = _diagnose_database(
        url, "database", settings, state_here=not state_url, setting=setting[0]
    )
    items += standby_items(settings)
    if state_url is not None:
        items += _diagnose_database(
            state_url, "state store", settings, state_here=True, setting=setting[1]
        )
    return items


def _diagnose_database(
    url: SecretStr, purpose: str, settings: Settings, *, state_here: bool, setting: str
) -> list[DoctorItem]:
    """Connect read-only and run this database's items (and the state store's, if it is here).

    Raises nothing: every failure becomes an item.
    """
    prefix = "database" if purpose == "database" else "state"
    covered = "database and state store" if purpose == "database" and state_here else purpose
    try:
        conn = connect(
            url, purpose=purpose, connect_timeout=settings.connect_timeout, read_only=True,
            setting=setting,
        )  # fmt: skip
    except DqError as exc:  # DatabaseUnavailable, StoreUnavailable, ConfigError (bad URL)
        # connect() names host:port/dbname only; libpq may still quote the user name.
        detail = redact(_QUOTED_ROLE.sub(r'\1 "***"', str(exc)), secrets_of(url))
        return [
            problem(f"{prefix}.connection", detail),
            skipped(f"{prefix}.skipped", f"the other {covered} items: no connection"),
        ]
    db = Inspector(conn, url, purpose)
    try:
        timeout_ms = str(int(settings.statement_timeout.total_seconds() * 1000))
        db.rows("SELECT set_config('statement_timeout', %s, false)", (timeout_ms,))
        version, role = db.rows("SELECT current_setting('server_version'), current_user")[0]
    except DqError as exc:
        return [problem(f"{prefix}.server_version", str(exc))]
    try:
        where = safe_target(url)
        items = [ok(f"{prefix}.server_version", f"PostgreSQL {version} at {where}, as role {role}")]
        steps: list[Step] = []
        if purpose == "database":
            steps += MonitoredDiagnosis(db, str(role), settings).steps()
        if state_here:
            steps += StateDiagnosis(db, str(role), settings, shared=purpose == "database").steps()
        return items + run_steps(steps, prefix, covered)
    finally:
        conn.close()
