"""The state schema's tables by name, and sessions on the state store's connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import psycopg
from psycopg import sql

from monitor.db.connections import ConnectionSource

# Every table of the state schema (see schema.py); a misspelt name fails type checking.
Table = Literal[
    "check_runs", "findings", "counter_ledger", "ledger_baselines", "check_stats",
    "service_state", "alert_state", "alert_outbox", "silences", "delivery_stats",
    "pgss_samples", "pgss_statements", "migration_audit", "migration_archive", "schema_version",
]  # fmt: skip


class StateTables:
    """Where the state schema lives: the store's connections and the schema's name."""

    def __init__(self, source: ConnectionSource, schema: str) -> None:
        self.source = source
        self.schema = schema

    def __call__(self, table: Table) -> sql.Identifier:
        """The schema-qualified, quoted name of one of the state tables."""
        return sql.Identifier(self.schema, table)

    @contextmanager
    def session(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for `action`; psycopg errors leave it as store errors (see database)."""
        with self.source.connection(action) as conn:
            yield conn
