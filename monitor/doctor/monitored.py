"""The doctor's items for the monitored database: tables, columns, grants, indexes, pgss."""

from __future__ import annotations

from dataclasses import dataclass

from checks import TableRef, select_checks, table_ref
from checks.indexes import missing_indexes
from config import Settings
from monitor.db import Inspector
from monitor.doctor.items import GRANTS, SCHEMA_PRIVILEGES, DoctorItem, Step, ok, problem, skipped

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
_PGSS = "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
# What the gate reads, as it reads them (unqualified, on the role's search_path).
_PGSS_READS = (
    "SELECT dealloc, stats_reset FROM pg_stat_statements_info",
    "SELECT 1 FROM pg_stat_statements LIMIT 1",
)


@dataclass(frozen=True)
class _Table:
    ref: TableRef
    oid: int | None
    missing: tuple[str, ...] = ()  # configured column names the table lacks


class MonitoredDiagnosis:
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
        found = self.db.rows(SCHEMA_PRIVILEGES, (self.schema,))
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
            return problem(
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
            return ok(name, f"{ref.label} has the configured columns{note}")
        columns = ", ".join(ref.columns[f] for f in absent)
        hint = "set " + ", ".join(f"tables.{key}.{f} ({_env(key, f)})" for f in absent)
        hint += " to the column's name in the job system"
        if set(absent) <= set(dropped):
            hint = ("if migration 005 dropped them, disable counter_writes "
                    f"(DQ_CHECKS__COUNTER_WRITES__ENABLED=false); otherwise {hint}")  # fmt: skip
        return problem(name, f"{ref.label} has no column {columns}", hint)

    def grant_items(self) -> list[DoctorItem]:
        grantee = self.db.ident(self.role)
        items = []
        if self.schema_exists:
            name, schema = "database.grant.schema_usage", self.db.ident(self.schema)
            if self.schema_usage:
                items.append(ok(name, f"role {self.role} may use schema {self.schema}"))
            else:
                items.append(problem(
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
            return ok(name, f"role {self.role} may read {table.ref.label}")
        return problem(
            name, f"role {self.role} may not SELECT from {table.ref.label}",
            f"GRANT SELECT ON {self.db.ident(table.ref.schema, table.ref.name)} "
            f"TO {grantee}; {GRANTS}",
        )  # fmt: skip

    def _read_all_stats_item(self, grantee: str) -> DoctorItem:
        # USAGE, not MEMBER: pg_stat_statements asks whether the role has the privileges of
        # pg_read_all_stats (a membership granted WITH INHERIT FALSE does not count).
        name = "database.grant.pg_read_all_stats"
        if self.db.value("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"):
            return ok(name, f"role {self.role} has pg_read_all_stats (for the gate)")
        return problem(
            name, f"role {self.role} lacks pg_read_all_stats: the gate cannot see "
            "other roles' statements in pg_stat_statements",
            f"GRANT pg_read_all_stats TO {grantee}; {GRANTS}",
        )  # fmt: skip

    def index_items(self) -> list[DoctorItem]:
        if not self.schema_usage:
            why = "needs USAGE on" if self.schema_exists else "there is no"
            return [skipped("database.indexes", f"not inspected: {why} schema {self.schema}")]
        absent = {t.ref.label: set(t.missing) for t in self.tables.values()}
        checks = select_checks(self.settings)
        found = self.db.call(lambda c: missing_indexes(c, checks, self.settings.tables))
        items = [
            problem(
                f"database.index.{index.table.name}({','.join(index.columns)})",
                f"missing index on {index.table.label} ({', '.join(index.columns)}), used to "
                f"{index.why}", f'{index.statement} (docs/operations.md "Indexes")',
            )
            for index in found
            if not absent.get(index.table.label, set()) & set(index.columns)
        ]  # fmt: skip
        if items:
            return items
        some = " (on the tables found)" if any(t.oid is None for t in self.tables.values()) else ""
        return [ok("database.indexes", f"the indexes the incremental checks use exist{some}")]

    def pgss_items(self, name: str = "database.pg_stat_statements") -> list[DoctorItem]:
        version = self.db.value(_PGSS)
        if version is None:
            return [problem(
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
                return [problem(name, f"version {version} installed but not readable: {detail}",
                                hint)]  # fmt: skip
        return [ok(name, f"version {version} installed and readable (for the gate)")]


def _env(key: str, field_name: str) -> str:
    return f"DQ_TABLES__{key.upper()}__{field_name.upper()}"
