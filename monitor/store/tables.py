"""The state schema's tables by name, and sessions on the state store's connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args

import psycopg
from psycopg import sql

from monitor.db import ConnectionSource

# Every table of the state schema (see schema.py); a misspelt name fails type checking, and
# tests/monitor/store/test_one_door.py compares the list with an upgraded schema.
Table = Literal[
    "schema_version", "check_runs", "findings", "check_stats", "service_state",
    "alert_state", "alert_outbox", "silences", "delivery_stats", "pgss_samples",
    "migration_audit", "migration_archive", "pgss_statements", "check_memory_baselines",
    "check_memory",
]  # fmt: skip
STATE_TABLES: tuple[str, ...] = get_args(Table)


def qualified(schema: str, table: Table) -> sql.Identifier:
    """`schema.table`, quoted; only for the state schema's own tables."""
    if table not in STATE_TABLES:
        raise ValueError(f"not a state table: {table}")
    return sql.Identifier(schema, table)


def stats_rows(
    conn: psycopg.Connection[Any], table: sql.Identifier, columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Every row of a stats table as a dict of `columns`, its histogram read as a tuple."""
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), table
    )
    rows = []
    for row in conn.execute(query).fetchall():
        values = dict(zip(columns, row, strict=True))
        values["duration_buckets"] = tuple(values["duration_buckets"])
        rows.append(values)
    return rows


class StateTables:
    """Where the state schema lives: the store's connections and the schema's name."""

    def __init__(self, source: ConnectionSource, schema: str) -> None:
        self.source = source
        self.schema = schema

    def __call__(self, table: Table) -> sql.Identifier:
        """The schema-qualified, quoted name of one of the state tables."""
        return qualified(self.schema, table)

    @contextmanager
    def session(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for `action`; psycopg errors leave it as store errors (see monitor.db)."""
        with self.source.connection(action) as conn:
            yield conn
