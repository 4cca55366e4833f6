"""The doctor's items for the state store: its schema, the rights on its tables, its version."""

from __future__ import annotations

from config import Settings
from monitor.db import Inspector
from monitor.doctor.items import GRANTS, SCHEMA_PRIVILEGES, DoctorItem, Step, ok, problem
from monitor.store import LATEST_VERSION, STATE_TABLES, installed_version

# One by one: has_table_privilege(oid, 'SELECT, INSERT') means "any of them".
_TABLES_LACKING = (
    "SELECT c.relname FROM pg_class AS c WHERE c.relnamespace = %s AND c.relkind IN ('r', 'p')"
    " AND c.relname = ANY(%s)"
    " AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')"
    " AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))"
    " ORDER BY 1"
)


class StateDiagnosis:
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
        return [ok("state.database", "the monitored database (DQ_STATE_DATABASE_URL is not set)")]

    def schema_items(self) -> list[DoctorItem]:
        grantee, who = self.db.ident(self.role), f"role {self.role}"
        schema = self.db.ident(self.schema)
        found = self.db.rows(SCHEMA_PRIVILEGES, (self.schema,))
        if not found:
            if self.db.value("SELECT has_database_privilege(current_database(), 'CREATE')"):
                return [ok("state.schema", f"schema {self.schema} does not exist yet; {who} "
                           "may create it (the first check or run does)")]  # fmt: skip
            return [problem(
                "state.schema", f"schema {self.schema} does not exist and {who} may not create it",
                f"as an administrator: CREATE SCHEMA {schema} AUTHORIZATION {grantee}; {GRANTS}",
            )]  # fmt: skip
        self.oid, usage, create = int(found[0][0]), bool(found[0][1]), bool(found[0][2])
        if usage and create:
            return [ok("state.schema", f"schema {self.schema} exists; {who} may use and "
                       "create in it")]  # fmt: skip
        lacking = " and ".join(p for p, has in (("USAGE", usage), ("CREATE", create)) if not has)
        return [problem(
            "state.schema", f"{who} lacks {lacking} on schema {self.schema}",
            f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {grantee}; {GRANTS}",
        )]  # fmt: skip

    def table_items(self) -> list[DoctorItem]:
        if self.oid is None:
            return []
        lacking = [row[0] for row in self.db.rows(_TABLES_LACKING, (self.oid, list(STATE_TABLES)))]
        if not lacking:
            return [ok("state.tables", f"role {self.role} may read and write the "
                       f"tables in {self.schema}")]  # fmt: skip
        return [problem(
            "state.tables", f"role {self.role} may not read and write "
            f"{', '.join(lacking)} in {self.schema}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
            f"{self.db.ident(self.schema)} TO {self.db.ident(self.role)};",
        )]  # fmt: skip

    def version_items(self) -> list[DoctorItem]:
        name, latest = "state.schema_version", LATEST_VERSION
        current = None
        if self.oid is not None:
            current = self.db.call(lambda conn: installed_version(conn, self.schema))
        if current is None:
            return [ok(name, f"no version yet; this build creates version {latest} at its "
                       "first check or run")]  # fmt: skip
        if current == latest:
            return [ok(name, f"version {current}, the version this build expects")]
        if current < latest:
            return [ok(name, f"version {current}; this build expects {latest} and upgrades "
                       "it at its first check or run")]  # fmt: skip
        return [problem(
            name, f"version {current}, newer than this build understands ({latest})",
            "deploy the dq-monitor release that upgraded the schema, or a newer one",
        )]  # fmt: skip
