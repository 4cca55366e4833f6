"""Tell the user which index the checks rely on is missing, and the statement that creates it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from checks import Check, IndexSpec, TableRef, table_ref
from config import TablesSettings

_INDEX_COLUMNS = sql.SQL(
    "SELECT array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)"
    " LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.num"
    " ORDER BY k.ord)"
    " FROM pg_index AS i"
    " WHERE i.indrelid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s))"
    " AND i.indpred IS NULL AND i.indisvalid"
)
_TABLE_EXISTS = sql.SQL("SELECT to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) IS NOT NULL")


@dataclass(frozen=True)
class MissingIndex:
    """An index a check relies on that the table lacks, and the statement that creates it."""

    table: TableRef
    columns: tuple[str, ...]  # the configured column names, in index order
    why: str
    statement: str

    @property
    def hint(self) -> str:
        return (
            f"missing index on {self.table.label} ({', '.join(self.columns)}), used to "
            f"{self.why}; create it: {self.statement}"
        )


def missing_indexes(
    conn: psycopg.Connection[Any], checks: Sequence[Check], tables: TablesSettings
) -> list[MissingIndex]:
    """The indexes the incremental checks rely on that do not exist, one per (table, columns).

    Tables that do not exist are skipped (the checks report that themselves).
    Raises psycopg errors; callers translate them or treat advice as best effort.
    """
    wanted: dict[tuple[str, tuple[str, ...]], IndexSpec] = {}
    for check in checks:
        if check.incremental:
            for spec in check.indexes():
                wanted.setdefault((spec.table, spec.columns), spec)
    missing = []
    for (table, columns), spec in wanted.items():
        ref = table_ref(tables, table)
        names = [ref.columns[c] for c in columns]
        exists = conn.execute(_TABLE_EXISTS, (ref.schema, ref.name)).fetchone()
        if not exists or not exists[0]:
            continue
        indexed = [list(r[0]) for r in conn.execute(_INDEX_COLUMNS, (ref.schema, ref.name))]
        if any(cols[: len(names)] == names for cols in indexed):
            continue
        statement = sql.SQL("CREATE INDEX CONCURRENTLY ON {} ({});").format(
            ref.ident, sql.SQL(", ").join(sql.Identifier(n) for n in names)
        )
        missing.append(MissingIndex(ref, tuple(names), spec.why, statement.as_string(conn)))
    return missing


def missing_index_hints(
    conn: psycopg.Connection[Any], checks: Sequence[Check], tables: TablesSettings
) -> list[str]:
    """One line per missing index: what it is for and the CREATE INDEX statement.

    Tables that do not exist are skipped (the checks report that themselves).
    Raises psycopg errors; callers treat advice as best effort.
    """
    return [index.hint for index in missing_indexes(conn, checks, tables)]
