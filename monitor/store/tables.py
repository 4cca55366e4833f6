"""The state schema's table names, and the one way to name a table in it."""

from __future__ import annotations

from psycopg import sql

# Every table the state schema's upgrades create (monitor/store/schema.py); a test compares
# this with an upgraded schema, so a new table cannot be left out.
STATE_TABLES: tuple[str, ...] = (
    "schema_version",
    "check_runs",
    "findings",
    "counter_ledger",
    "check_stats",
    "service_state",
    "ledger_baselines",
    "alert_state",
    "alert_outbox",
    "silences",
    "delivery_stats",
    "pgss_samples",
    "migration_audit",
    "migration_archive",
    "pgss_statements",
)


def qualified(schema: str, table: str) -> sql.Identifier:
    """`schema.table`, quoted; only for the state schema's own tables."""
    if table not in STATE_TABLES:
        raise ValueError(f"not a state table: {table}")
    return sql.Identifier(schema, table)
