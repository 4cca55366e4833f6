"""`dq-monitor doctor`'s diagnosis: can this deployment read what it needs? It never writes."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import httpx
from psycopg import sql
from pydantic import SecretStr

from alerts import reachability
from checks import TableRef, redact, select_checks, table_ref
from checks.indexes import missing_indexes
from config import ConfigError, DatabaseUnavailable, DqError, Settings, StoreUnavailable
from monitor.db.connections import Inspector, connect, safe_target, secrets_of
from monitor.store.schema import LATEST_VERSION

GRANTS = '(README "Database grants")'
TABLE_KEYS = ("run_metadata", "partition_progress", "worker_runs")
# Migration 005 drops these; once it ran, counter_writes is disabled and they may be gone.
DEPRECATED_COLUMNS = ("completed_workers", "failed_workers")

# Catalog lookups by name, not to_regclass(): that raises when the role lacks USAGE on the
# schema, and the missing grant is one of the things to report.
_RELATION = (
    "SELECT c.oid FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
)
_COLUMNS = (
    "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped"
)
_SCHEMA = (
    "SELECT oid, has_schema_privilege(oid, 'USAGE'), has_schema_privilege(oid, 'CREATE')"
    " FROM pg_namespace WHERE nspname = %s"
)
# One by one: has_table_privilege(oid, 'SELECT, INSERT') means "any of them".
_STATE_TABLES_LACKING = (
    "SELECT c.relname FROM pg_class AS c WHERE c.relnamespace = %s AND c.relkind IN ('r', 'p')"
    " AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')"
    " AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))"
    " ORDER BY 1"
)
_PGSS = "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
# What the gate reads, as it reads them (unqualified, on the role's search_path).
_PGSS_READS = (
    "SELECT dealloc, stats_reset FROM pg_stat_statements_info",
    "SELECT 1 FROM pg_stat_statements LIMIT 1",
)
_QUOTED_ROLE = re.compile(r'\b(user|role) "[^"]*"')


class ItemStatus(StrEnum):
    """How an item stands; only PROBLEM makes `doctor` exit 2."""

    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"  # not looked at, because of a problem reported before it


@dataclass(frozen=True)
class DoctorItem:
    """One line of the diagnosis: what was looked at, how it stands, and what to do."""

    name: str
    status: ItemStatus
    detail: str
    hint: str | None = None


def _ok(name: str, detail: str) -> DoctorItem:
    return DoctorItem(name, ItemStatus.OK, detail)


def _problem(name: str, detail: str, hint: str | None = None) -> DoctorItem:
    return DoctorItem(name, ItemStatus.PROBLEM, detail, hint)


def _skipped(name: str, detail: str) -> DoctorItem:
    return DoctorItem(name, ItemStatus.SKIPPED, detail)


def healthy(items: Sequence[DoctorItem]) -> bool:
    """True when no item is a problem."""
    return all(item.status is not ItemStatus.PROBLEM for item in items)


def diagnose(
    settings: Settings, *, routes: bool = False, client: httpx.Client | None = None
) -> list[DoctorItem]:
    """Every item: the monitored database, the state store, then (if asked) the alert routes.

    Problems are items, not exceptions: an unreachable database is one problem item and one
    skipped item. Raises ConfigError only when no database URL is set.
    """
    if settings.database_url is None:
        raise ConfigError(
            "DQ_DATABASE_URL is not set; set it (or database_url in the config file) to the "
            "monitored database's URL"
        )
    state_url = settings.state_database_url
    items = _diagnose_database(
        settings.database_url, "database", settings, state_here=not state_url
    )
    if state_url is not None:
        items += _diagnose_database(state_url, "state store", settings, state_here=True)
    if routes:
        items += route_items(settings, client)
    return items


Step = tuple[str, Callable[[], list[DoctorItem]]]


def _diagnose_database(
    url: SecretStr, purpose: str, settings: Settings, *, state_here: bool
) -> list[DoctorItem]:
    """Connect read-only and run this database's items (and the state store's, if it is here).

    Raises nothing: every failure becomes an item.
    """
    prefix = "database" if purpose == "database" else "state"
    covered = "database and state store" if purpose == "database" and state_here else purpose
    try:
        conn = connect(
            url, purpose=purpose, connect_timeout=settings.connect_timeout, read_only=True
        )
    except DqError as exc:  # DatabaseUnavailable, StoreUnavailable, ConfigError (bad URL)
        # connect() names host:port/dbname only; libpq may still quote the user name.
        detail = redact(_QUOTED_ROLE.sub(r'\1 "***"', str(exc)), secrets_of(url))
        return [
            _problem(f"{prefix}.connection", detail),
            _skipped(f"{prefix}.skipped", f"the other {covered} items: no connection"),
        ]
    db = Inspector(conn, url, purpose)
    try:
        timeout_ms = str(int(settings.statement_timeout.total_seconds() * 1000))
        db.rows("SELECT set_config('statement_timeout', %s, false)", (timeout_ms,))
        version, role = db.rows("SELECT current_setting('server_version'), current_user")[0]
    except DqError as exc:
        return [_problem(f"{prefix}.server_version", str(exc))]
    try:
        where = safe_target(url)
        items = [
            _ok(f"{prefix}.server_version", f"PostgreSQL {version} at {where}, as role {role}")
        ]
        steps: list[Step] = []
        if purpose == "database":
            steps += _MonitoredDiagnosis(db, str(role), settings).steps()
        if state_here:
            steps += _StateDiagnosis(db, str(role), settings, shared=purpose == "database").steps()
        return items + _run_steps(steps, prefix, covered)
    finally:
        conn.close()


def _run_steps(steps: Sequence[Step], prefix: str, covered: str) -> list[DoctorItem]:
    """Run each step; a failed step is a problem item, a lost connection ends the database."""
    items: list[DoctorItem] = []
    for name, step in steps:
        try:
            items.extend(step())
        except (DatabaseUnavailable, StoreUnavailable) as exc:
            items.append(_problem(name, str(exc), "check that the server is up, then run again"))
            items.append(
                _skipped(f"{prefix}.skipped", f"the other {covered} items: connection lost")
            )
            break
        except DqError as exc:  # a query failed or timed out: this item cannot be decided
            items.append(_problem(name, str(exc)))
    return items


# --- the monitored database -----------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    ref: TableRef
    oid: int | None
    missing: tuple[str, ...] = ()  # configured column names the table lacks


class _MonitoredDiagnosis:
    """The configured tables and columns, the README's grants, indexes, pg_stat_statements."""

    def __init__(self, db: Inspector, role: str, settings: Settings) -> None:
        self.db = db
        self.role = role
        self.settings = settings
        self.schema = settings.tables.schema_name
        self.schema_exists = False
        self.schema_usage = False
        self.tables: dict[str, _Table] = {}

    def steps(self) -> list[Step]:
        return [
            ("database.tables", self.table_items),
            ("database.grants", self.grant_items),
            ("database.indexes", self.index_items),
            ("database.pg_stat_statements", self.pgss_items),
        ]

    def table_items(self) -> list[DoctorItem]:
        found = self.db.rows(_SCHEMA, (self.schema,))
        self.schema_exists = bool(found)
        self.schema_usage = bool(found and found[0][1])
        return [self._table_item(key) for key in TABLE_KEYS]

    def _table_item(self, key: str) -> DoctorItem:
        ref = table_ref(self.settings.tables, key)
        name = f"database.table.{key}"
        oid = self.db.value(_RELATION, (ref.schema, ref.name))
        if oid is None:
            self.tables[key] = _Table(ref, None)
            where = "" if self.schema_exists else f" (there is no schema {ref.schema})"
            return _problem(
                name, f"{ref.label} does not exist{where}",
                f"set tables.{key}.name ({_env(key, 'name')}) or tables.schema_name "
                "(DQ_TABLES__SCHEMA_NAME) to where the job system keeps this table",
            )  # fmt: skip
        present = {row[0] for row in self.db.rows(_COLUMNS, (oid,))}
        absent = [f for f, column in ref.columns.items() if column not in present]
        self.tables[key] = _Table(ref, int(oid), tuple(ref.columns[f] for f in absent))
        dropped = [f for f in absent if key == "run_metadata" and f in DEPRECATED_COLUMNS]
        if dropped and not self.settings.checks.builtin("counter_writes").enabled:
            absent = [f for f in absent if f not in dropped]
        if not absent:
            note = f"; {', '.join(dropped)} dropped (counter_writes is disabled)" if dropped else ""
            return _ok(name, f"{ref.label} has the configured columns{note}")
        columns = ", ".join(ref.columns[f] for f in absent)
        hint = "set " + ", ".join(f"tables.{key}.{f} ({_env(key, f)})" for f in absent)
        hint += " to the column's name in the job system"
        if set(absent) <= set(dropped):
            hint = ("if migration 005 dropped them, disable counter_writes "
                    f"(DQ_CHECKS__COUNTER_WRITES__ENABLED=false); otherwise {hint}")  # fmt: skip
        return _problem(name, f"{ref.label} has no column {columns}", hint)

    def grant_items(self) -> list[DoctorItem]:
        grantee = self.db.ident(self.role)
        items = []
        if self.schema_exists:
            name, schema = "database.grant.schema_usage", self.db.ident(self.schema)
            if self.schema_usage:
                items.append(_ok(name, f"role {self.role} may use schema {self.schema}"))
            else:
                items.append(_problem(
                    name, f"role {self.role} lacks USAGE on schema {self.schema}",
                    f"GRANT USAGE ON SCHEMA {schema} TO {grantee}; {GRANTS}",
                ))  # fmt: skip
        for key, table in self.tables.items():
            if table.oid is not None:
                items.append(self._select_item(key, table, grantee))
        items.append(self._read_all_stats_item(grantee))
        return items

    def _select_item(self, key: str, table: _Table, grantee: str) -> DoctorItem:
        name = f"database.grant.select.{key}"
        if self.db.value("SELECT has_table_privilege(%s::oid, 'SELECT')", (table.oid,)):
            return _ok(name, f"role {self.role} may read {table.ref.label}")
        return _problem(
            name, f"role {self.role} may not SELECT from {table.ref.label}",
            f"GRANT SELECT ON {self.db.ident(table.ref.schema, table.ref.name)} "
            f"TO {grantee}; {GRANTS}",
        )  # fmt: skip

    def _read_all_stats_item(self, grantee: str) -> DoctorItem:
        # USAGE, not MEMBER: pg_stat_statements asks whether the role has the privileges of
        # pg_read_all_stats (a membership granted WITH INHERIT FALSE does not count).
        name = "database.grant.pg_read_all_stats"
        if self.db.value("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"):
            return _ok(name, f"role {self.role} has pg_read_all_stats (for the gate)")
        return _problem(
            name, f"role {self.role} lacks pg_read_all_stats: the gate cannot see "
            "other roles' statements in pg_stat_statements",
            f"GRANT pg_read_all_stats TO {grantee}; {GRANTS}",
        )  # fmt: skip

    def index_items(self) -> list[DoctorItem]:
        if not self.schema_usage:
            why = "needs USAGE on" if self.schema_exists else "there is no"
            return [_skipped("database.indexes", f"not inspected: {why} schema {self.schema}")]
        absent = {t.ref.label: set(t.missing) for t in self.tables.values()}
        checks = select_checks(self.settings)
        found = self.db.call(lambda c: missing_indexes(c, checks, self.settings.tables))
        items = [
            _problem(
                f"database.index.{index.table.name}({','.join(index.columns)})",
                f"missing index on {index.table.label} ({', '.join(index.columns)}), used to "
                f"{index.why}", f'{index.statement} (README "Indexes")',
            )
            for index in found
            if not absent.get(index.table.label, set()) & set(index.columns)
        ]  # fmt: skip
        if items:
            return items
        some = " (on the tables found)" if any(t.oid is None for t in self.tables.values()) else ""
        return [_ok("database.indexes", f"the indexes the incremental checks use exist{some}")]

    def pgss_items(self) -> list[DoctorItem]:
        name = "database.pg_stat_statements"
        version = self.db.value(_PGSS)
        if version is None:
            return [_problem(
                name, "not installed in this database: the gate cannot find readers of the "
                "deprecated columns",
                "as an administrator: CREATE EXTENSION pg_stat_statements; with "
                f"pg_stat_statements in shared_preload_libraries {GRANTS}",
            )]  # fmt: skip
        for query in _PGSS_READS:
            failure = self.db.attempt(query)
            if failure is not None:
                sqlstate, detail = failure
                hint = GRANTS
                if sqlstate == "55000":  # object not in prerequisite state: not preloaded
                    hint = "add pg_stat_statements to shared_preload_libraries and restart"
                return [_problem(name, f"version {version} installed but not readable: {detail}",
                                 hint)]  # fmt: skip
        return [_ok(name, f"version {version} installed and readable (for the gate)")]


def _env(key: str, field_name: str) -> str:
    return f"DQ_TABLES__{key.upper()}__{field_name.upper()}"


# --- the state store ------------------------------------------------------------------------


class _StateDiagnosis:
    """The state schema: there or creatable, usable, writable, and at a version we know."""

    def __init__(self, db: Inspector, role: str, settings: Settings, *, shared: bool) -> None:
        self.db = db
        self.role = role
        self.schema = settings.state_schema
        self.shared = shared
        self.oid: int | None = None

    def steps(self) -> list[Step]:
        steps: list[Step] = [
            ("state.schema", self.schema_items),
            ("state.tables", self.table_items),
            ("state.schema_version", self.version_items),
        ]
        if self.shared:
            steps.insert(0, ("state.database", self.shared_item))
        return steps

    def shared_item(self) -> list[DoctorItem]:
        return [_ok("state.database", "the monitored database (DQ_STATE_DATABASE_URL is not set)")]

    def schema_items(self) -> list[DoctorItem]:
        grantee, who = self.db.ident(self.role), f"role {self.role}"
        schema = self.db.ident(self.schema)
        found = self.db.rows(_SCHEMA, (self.schema,))
        if not found:
            if self.db.value("SELECT has_database_privilege(current_database(), 'CREATE')"):
                return [_ok("state.schema", f"schema {self.schema} does not exist yet; {who} "
                            "may create it (the first check or run does)")]  # fmt: skip
            return [_problem(
                "state.schema", f"schema {self.schema} does not exist and {who} may not create it",
                f"as an administrator: CREATE SCHEMA {schema} AUTHORIZATION {grantee}; {GRANTS}",
            )]  # fmt: skip
        self.oid, usage, create = int(found[0][0]), bool(found[0][1]), bool(found[0][2])
        if usage and create:
            return [_ok("state.schema", f"schema {self.schema} exists; {who} may use and "
                        "create in it")]  # fmt: skip
        lacking = " and ".join(p for p, has in (("USAGE", usage), ("CREATE", create)) if not has)
        return [_problem(
            "state.schema", f"{who} lacks {lacking} on schema {self.schema}",
            f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {grantee}; {GRANTS}",
        )]  # fmt: skip

    def table_items(self) -> list[DoctorItem]:
        if self.oid is None:
            return []
        lacking = [row[0] for row in self.db.rows(_STATE_TABLES_LACKING, (self.oid,))]
        if not lacking:
            return [_ok("state.tables", f"role {self.role} may read and write the "
                        f"tables in {self.schema}")]  # fmt: skip
        return [_problem(
            "state.tables", f"role {self.role} may not read and write "
            f"{', '.join(lacking)} in {self.schema}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
            f"{self.db.ident(self.schema)} TO {self.db.ident(self.role)};",
        )]  # fmt: skip

    def version_items(self) -> list[DoctorItem]:
        name, latest = "state.schema_version", LATEST_VERSION
        if self.oid is None or self.db.value(_RELATION, (self.schema, "schema_version")) is None:
            return [_ok(name, f"no version yet; this build creates version {latest} at its "
                        "first check or run")]  # fmt: skip
        table = sql.Identifier(self.schema, "schema_version")
        query = sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(table)
        current = int(self.db.value(query))
        if current == latest:
            return [_ok(name, f"version {current}, the version this build expects")]
        if current < latest:
            return [_ok(name, f"version {current}; this build expects {latest} and upgrades "
                        "it at its first check or run")]  # fmt: skip
        return [_problem(
            name, f"version {current}, newer than this build understands ({latest})",
            "deploy the dq-monitor release that upgraded the schema, or a newer one",
        )]  # fmt: skip


# --- alert routes ---------------------------------------------------------------------------


def route_items(settings: Settings, client: httpx.Client | None = None) -> list[DoctorItem]:
    """Whether each alert route's receiver answers HTTP; shows only scheme://host:port."""
    routes = settings.alerts.routes
    if not routes:
        return [_ok("routes", "no alert routes are configured")]
    own = client is None
    client = client or httpx.Client(
        timeout=settings.alerts.request_timeout.total_seconds(), follow_redirects=False
    )
    items = []
    try:
        for route in routes:
            found = reachability(route, client)
            detail = f"{route.type.value}: {found.detail}"
            if found.reachable:
                items.append(_ok(f"route.{route.name}", detail))
            else:
                items.append(_problem(f"route.{route.name}", detail, _route_hint(route.name)))
    finally:
        if own:
            client.close()
    return items


def _route_hint(name: str) -> str:
    return (
        "check DNS, firewall and proxy settings (HTTPS_PROXY, NO_PROXY) on this host; then "
        f"`dq-monitor alerts test --route {name}` sends a real test message"
    )
