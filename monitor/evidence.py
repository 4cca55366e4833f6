"""Evidence about the deprecated columns in the monitored database: dependencies and readers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from checks import table_ref
from config import Settings

# Objects that depend on a column, by the catalog that records the dependency.
_DEPENDENCIES = sql.SQL(
    "SELECT CASE d.classid"
    "  WHEN 'pg_rewrite'::regclass THEN 'view ' || (SELECT ev_class::regclass::text"
    "       FROM pg_rewrite WHERE oid = d.objid)"
    "  WHEN 'pg_class'::regclass THEN (CASE c.relkind WHEN 'i' THEN 'index ' ELSE 'relation ' END)"
    "       || d.objid::regclass::text"
    "  WHEN 'pg_constraint'::regclass THEN 'constraint ' || (SELECT conname FROM pg_constraint"
    "       WHERE oid = d.objid)"
    "  WHEN 'pg_trigger'::regclass THEN 'trigger ' || (SELECT tgname FROM pg_trigger"
    "       WHERE oid = d.objid)"
    "  WHEN 'pg_policy'::regclass THEN 'policy ' || (SELECT polname FROM pg_policy"
    "       WHERE oid = d.objid)"
    "  WHEN 'pg_statistic_ext'::regclass THEN 'statistics ' || (SELECT stxname"
    "       FROM pg_statistic_ext WHERE oid = d.objid)"
    "  ELSE d.classid::regclass::text || ' ' || d.objid END, a.attname"
    " FROM pg_depend d"
    " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    " LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid"
    " WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(table)s::regclass"
    " AND a.attname = ANY(%(columns)s) AND d.classid <> 'pg_attrdef'::regclass"
    " AND NOT (d.classid = 'pg_class'::regclass AND d.objid = %(table)s::regclass)"
    # NOT NULL is part of the column itself (PostgreSQL 18 catalogs it as a constraint).
    " AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (SELECT 1 FROM pg_constraint"
    "          WHERE oid = d.objid AND contype = 'n'))"
    " ORDER BY 1"
)
_FUNCTIONS = sql.SQL(
    "SELECT 'function ' || p.oid::regprocedure::text, col FROM pg_proc p"
    " JOIN pg_namespace n ON n.oid = p.pronamespace,"
    " unnest(%(columns)s::text[]) AS col"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND p.prosrc ILIKE '%%' || col || '%%' ORDER BY 1"
)
_PUBLICATIONS = sql.SQL(
    "SELECT 'publication ' || pub.pubname, a.attname FROM pg_publication_rel pr"
    " JOIN pg_publication pub ON pub.oid = pr.prpubid"
    " JOIN pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs)"
    " WHERE pr.prrelid = %(table)s::regclass AND a.attname = ANY(%(columns)s) ORDER BY 1"
)


def deprecated_columns(settings: Settings) -> tuple[str, list[str]]:
    """The qualified table name and the two deprecated column names, as configured."""
    ref = table_ref(settings.tables, "run_metadata")
    qualified = sql.Identifier(ref.schema, ref.name).as_string(None)
    return qualified, [ref.columns["completed_workers"], ref.columns["failed_workers"]]


def dependencies(conn: psycopg.Connection[Any], settings: Settings) -> list[tuple[str, str]]:
    """(object, column) for every catalog object that uses a deprecated column."""
    table, columns = deprecated_columns(settings)
    params = {"table": table, "columns": columns}
    found: list[tuple[str, str]] = []
    for query in (_DEPENDENCIES, _FUNCTIONS, _PUBLICATIONS):
        found.extend((str(obj), str(col)) for obj, col in conn.execute(query, params))
    return sorted(set(found))


def columns_present(conn: psycopg.Connection[Any], settings: Settings) -> list[str]:
    """Which of the deprecated columns still exist."""
    table, columns = deprecated_columns(settings)
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname = ANY(%s) AND NOT attisdropped ORDER BY attnum",
        (table, columns),
    ).fetchall()
    return [r[0] for r in rows]


def pgss_state(conn: psycopg.Connection[Any]) -> tuple[bool, int | None, dt.datetime | None]:
    """(available, dealloc, stats_reset) of pg_stat_statements in this database."""
    row = conn.execute(
        "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
    ).fetchone()
    if not row or not row[0]:
        return False, None, None
    info = conn.execute("SELECT dealloc, stats_reset FROM pg_stat_statements_info").fetchone()
    if info is None:
        return False, None, None
    return True, int(info[0]), info[1]


def readers(conn: psycopg.Connection[Any], settings: Settings) -> list[dict[str, Any]]:
    """Statements by roles other than the monitor's own that name a deprecated column."""
    _, columns = deprecated_columns(settings)
    rows = conn.execute(
        "SELECT r.rolname, s.calls, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 200)"
        " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
        " WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND s.userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        " AND EXISTS (SELECT 1 FROM unnest(%s::text[]) AS col"
        "             WHERE s.query ~* ('\\m' || col || '\\M'))"
        " ORDER BY s.calls DESC LIMIT 20",
        (columns,),
    ).fetchall()
    return [{"role": r[0], "calls": int(r[1]), "query": r[2]} for r in rows]
