"""Configured table and column names as quoted SQL identifiers; only these reach the SQL text."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from config import TablesSettings


@dataclass(frozen=True)
class TableRef:
    """A schema-qualified table and its configured column names."""

    schema: str
    name: str
    columns: dict[str, str]

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    def col(self, key: str) -> sql.Identifier:
        return sql.Identifier(self.columns[key])


def table_ref(tables: TablesSettings, key: str) -> TableRef:
    """The TableRef for `run_metadata`, `partition_progress` or `worker_runs`."""
    names = getattr(tables, key)
    fields = names.model_dump()
    fields.pop("name")
    # Status values (`*_status`, `terminal_statuses`) are parameters, not names.
    columns = {k: v for k, v in fields.items() if not k.endswith(("_status", "_statuses"))}
    return TableRef(schema=tables.schema_name, name=names.name, columns=columns)
