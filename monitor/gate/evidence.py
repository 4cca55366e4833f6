"""Evidence about the deprecated columns in the monitored database's catalog: dependencies.

Declared dependencies come from pg_depend (views, rules, indexes, constraints, triggers,
policies, statistics, generated columns, SQL-standard function bodies), function bodies
and publication column lists. Objects that read whole rows do not depend on a column (a
view over `to_jsonb(rm)` depends only on what it names), so view and rule definitions,
function bodies, constraint, index and policy expressions are read for whole-row use too,
and anything that uses the table's row type is a dependency. Inheritance children and
partitions count as the table: dropping the parent's columns drops theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from checks import table_ref
from config import Settings, SetupError
from monitor.gate.sqlreads import Target, reads

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
    "  WHEN 'pg_proc'::regclass THEN 'function ' || d.objid::regprocedure::text"
    "  WHEN 'pg_attrdef'::regclass THEN (SELECT 'generated column ' || g.attname || ' of table '"
    "       || ad.adrelid::regclass::text FROM pg_attrdef ad JOIN pg_attribute g"
    "       ON g.attrelid = ad.adrelid AND g.attnum = ad.adnum WHERE ad.oid = d.objid)"
    "  ELSE d.classid::regclass::text || ' ' || d.objid END, 'uses ' || a.attname"
    " FROM pg_depend d"
    " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    " LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid"
    " WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%(tables)s::oid[])"
    " AND a.attname = ANY(%(columns)s)"
    # A column's own default is part of the column; another column's expression over it
    # (a generated column) is not.
    " AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (SELECT 1 FROM pg_attrdef"
    "          WHERE oid = d.objid AND adrelid = d.refobjid AND adnum = d.refobjsubid))"
    " AND NOT (d.classid = 'pg_class'::regclass AND d.objid = ANY(%(tables)s::oid[]))"
    # NOT NULL is part of the column itself (PostgreSQL 18 catalogs it as a constraint).
    " AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (SELECT 1 FROM pg_constraint"
    "          WHERE oid = d.objid AND contype = 'n'))"
    " ORDER BY 1"
)
_FUNCTIONS = sql.SQL(
    "SELECT 'function ' || p.oid::regprocedure::text, 'uses ' || col FROM pg_proc p"
    " JOIN pg_namespace n ON n.oid = p.pronamespace,"
    " unnest(%(columns)s::text[]) AS col"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND p.prosrc ILIKE '%%' || col || '%%' ORDER BY 1"
)
_PUBLICATIONS = sql.SQL(
    "SELECT 'publication ' || pub.pubname, 'uses ' || a.attname FROM pg_publication_rel pr"
    " JOIN pg_publication pub ON pub.oid = pr.prpubid"
    " JOIN pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum = ANY(pr.prattrs)"
    " WHERE pr.prrelid = ANY(%(tables)s::oid[]) AND a.attname = ANY(%(columns)s) ORDER BY 1"
)
# Anything typed with the table's row type (or an array of it): it holds every column.
_ROW_TYPE = sql.SQL(
    "SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), 'uses the row type'"
    " FROM pg_depend d WHERE d.refclassid = 'pg_type'::regclass"
    " AND d.refobjid = ANY(%(types)s::oid[]) AND d.deptype <> 'i' ORDER BY 1"
)
# View, materialized view and rule definitions that involve the table.
_RULES = sql.SQL(
    "SELECT CASE WHEN r.rulename = '_RETURN' THEN (CASE c.relkind WHEN 'm'"
    "   THEN 'materialized view ' ELSE 'view ' END) || c.oid::regclass::text"
    "   ELSE 'rule ' || r.rulename || ' on ' || c.oid::regclass::text END,"
    " CASE WHEN r.rulename = '_RETURN' THEN pg_get_viewdef(c.oid) ELSE pg_get_ruledef(r.oid) END,"
    " r.rulename <> '_RETURN' AND c.oid = ANY(%(tables)s::oid[])"
    " FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class"
    " WHERE r.oid IN (SELECT objid FROM pg_depend WHERE classid = 'pg_rewrite'::regclass"
    "   AND refclassid = 'pg_class'::regclass AND refobjid = ANY(%(tables)s::oid[]))"
    " OR (r.rulename <> '_RETURN' AND c.oid = ANY(%(tables)s::oid[]))"
)
# Function bodies that mention the table, depend on it, or run as a trigger on it.
_BODIES = sql.SQL(
    "SELECT 'function ' || p.oid::regprocedure::text, l.lanname,"
    " CASE WHEN p.prosqlbody IS NULL THEN p.prosrc ELSE pg_get_functiondef(p.oid) END,"
    " EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid"
    "         AND t.tgrelid = ANY(%(tables)s::oid[]))"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " JOIN pg_language l ON l.oid = p.prolang"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p')"
    " AND l.lanname NOT IN ('c', 'internal')"
    " AND (EXISTS (SELECT 1 FROM unnest(%(needles)s::text[]) AS x"
    "              WHERE strpos(lower(p.prosrc), x) > 0)"
    "  OR p.oid IN (SELECT objid FROM pg_depend WHERE classid = 'pg_proc'::regclass"
    "               AND refobjid = ANY(%(tables)s::oid[]))"
    "  OR p.oid IN (SELECT tgfoid FROM pg_trigger WHERE tgrelid = ANY(%(tables)s::oid[])))"
)
# Expressions stored with the table: CHECK constraints, index expressions, policies, and
# triggers' WHEN conditions (over NEW and OLD).
_EXPRESSIONS = sql.SQL(
    "SELECT 'constraint ' || conname, pg_get_expr(conbin, conrelid), false FROM pg_constraint"
    " WHERE conrelid = ANY(%(tables)s::oid[]) AND conbin IS NOT NULL"
    " UNION ALL SELECT 'index ' || indexrelid::regclass::text,"
    " concat_ws(' ', pg_get_expr(indexprs, indrelid), pg_get_expr(indpred, indrelid)), false"
    " FROM pg_index WHERE indrelid = ANY(%(tables)s::oid[])"
    " AND (indexprs IS NOT NULL OR indpred IS NOT NULL)"
    " UNION ALL SELECT 'policy ' || polname || ' on ' || polrelid::regclass::text,"
    " concat_ws(' ', pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)),"
    " false FROM pg_policy WHERE polrelid = ANY(%(tables)s::oid[]) OR oid IN (SELECT objid"
    "   FROM pg_depend WHERE classid = 'pg_policy'::regclass"
    "   AND refobjid = ANY(%(tables)s::oid[]))"
    " UNION ALL SELECT 'trigger ' || tgname || ' on ' || tgrelid::regclass::text,"
    " substring(pg_get_triggerdef(oid) FROM ' WHEN (.*) EXECUTE '), true FROM pg_trigger"
    " WHERE tgrelid = ANY(%(tables)s::oid[]) AND tgqual IS NOT NULL"
)
_RELATIONS = sql.SQL(
    "WITH RECURSIVE tree(oid) AS (SELECT to_regclass(%s)::oid"
    " UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)"
    " SELECT c.oid, n.nspname, c.relname, c.reltype, t.typarray FROM tree"
    " JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_type t ON t.oid = c.reltype ORDER BY 1"
)
_NO_BODY_PARSER = "mentions the table in a body PostgreSQL's SQL lexer cannot read"


@dataclass(frozen=True)
class Relation:
    """The monitored table or one of its inheritance children (or partitions)."""

    oid: int
    schema: str
    name: str
    types: tuple[int, ...]  # its row type and the array of it


def deprecated_columns(settings: Settings) -> tuple[str, list[str]]:
    """The qualified table name and the two deprecated column names, as configured."""
    ref = table_ref(settings.tables, "run_metadata")
    qualified = sql.Identifier(ref.schema, ref.name).as_string(None)
    return qualified, [ref.columns["completed_workers"], ref.columns["failed_workers"]]


def relations(conn: psycopg.Connection[Any], settings: Settings) -> list[Relation]:
    """The table and every table that inherits from it.

    Raises SetupError when the configured table does not exist: a missing table is a wrong
    setting, never evidence that the columns were dropped.
    """
    table, _ = deprecated_columns(settings)
    rows = conn.execute(_RELATIONS, (table,)).fetchall()
    if not rows:
        raise SetupError(
            f"table {table} does not exist (the gate's run_metadata); set tables.schema_name "
            "and tables.run_metadata.name (see the Configuration reference in "
            "docs/configuration.md), or run `dq-monitor doctor`"
        )
    return [Relation(int(r[0]), r[1], r[2], tuple(int(t) for t in r[3:] if t)) for r in rows]


def target(settings: Settings, rels: list[Relation]) -> Target:
    """What a statement must mention to be a reader: the table (configured name and actual
    relations) and the deprecated columns."""
    ref = table_ref(settings.tables, "run_metadata")
    tables = {(ref.schema, ref.name)} | {(r.schema, r.name) for r in rels}
    _, columns = deprecated_columns(settings)
    return Target(frozenset(tables), frozenset(columns))


def dependencies(
    conn: psycopg.Connection[Any], settings: Settings, rels: list[Relation]
) -> list[tuple[str, str]]:
    """(object, what it does) for every catalog object that uses a deprecated column, reads
    whole rows of the table or uses its row type."""
    _, columns = deprecated_columns(settings)
    params: dict[str, Any] = {
        "tables": [r.oid for r in rels],
        "columns": columns,
        "types": [t for r in rels for t in r.types],
        "needles": target(settings, rels).needles,
    }
    found: list[tuple[str, str]] = []
    for query in (_DEPENDENCIES, _FUNCTIONS, _PUBLICATIONS, _ROW_TYPE):
        found.extend((str(obj), str(what)) for obj, what in conn.execute(query, params))
    found += _whole_rows(conn, params, target(settings, rels))
    return sorted(set(found))


def _whole_rows(
    conn: psycopg.Connection[Any], params: dict[str, Any], tgt: Target
) -> list[tuple[str, str]]:
    """Definitions and bodies read as SQL: whole-row use is recorded nowhere else."""
    found: list[tuple[str, str]] = []
    rows: tuple[str, ...]
    for obj, text, on_table in conn.execute(_RULES, params):
        rows = ("new", "old") if on_table else ()
        found += [(obj, why) for why in _whole_row_reasons(_rule_actions(text), tgt, rows)]
    for obj, language, body, trigger in conn.execute(_BODIES, params):
        rows = ("new", "old") if trigger else ()
        if language not in ("sql", "plpgsql"):
            if tgt.mentioned_in(body or ""):
                found.append((obj, f"{_NO_BODY_PARSER} ({language})"))
            continue
        found += [(obj, why) for why in _whole_row_reasons(_atomic_body(body or ""), tgt, rows)]
    for obj, text, trigger in conn.execute(_EXPRESSIONS, params):
        rows = ("new", "old") if trigger else ()
        found += [(obj, why) for why in _whole_row_reasons(text or "", tgt, rows)]
    return found


def _whole_row_reasons(text: str, tgt: Target, rows: tuple[str, ...]) -> list[str]:
    # Named columns are pg_depend's (or the function-body search's) to report.
    return [why for why in reads(text, tgt, rows) if not why.startswith("names ")]


def _rule_actions(ruledef: str) -> str:
    """A rule's actions (after DO [ALSO | INSTEAD]); a view's definition is all action."""
    m = re.search(r"\bDO\s+(?:ALSO\s+|INSTEAD\s+)?", ruledef)
    return ruledef[m.end() :] if ruledef.startswith("CREATE RULE") and m else ruledef


def _atomic_body(body: str) -> str:
    """A SQL-standard body (BEGIN ATOMIC ... END) without the CREATE FUNCTION header."""
    m = re.search(r"\bBEGIN ATOMIC\b", body)
    return body[m.start() :] if body.startswith("CREATE") and m else body


def publications(
    conn: psycopg.Connection[Any], settings: Settings, rels: list[Relation]
) -> list[str]:
    """Why readers may be out of sight: publications that replicate the counters, whose
    subscribers' readers no statistics here can show."""
    _, columns = deprecated_columns(settings)
    rows = conn.execute(
        "SELECT DISTINCT t.pubname FROM pg_publication_tables t"
        " WHERE (t.schemaname::text, t.tablename::text) IN"
        "  (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " AND (current_setting('server_version_num')::int < 150000"
        "      OR to_jsonb(t) -> 'attnames' ?| %s::text[])"
        " ORDER BY 1",
        ([r.schema for r in rels], [r.name for r in rels], columns),
    ).fetchall()
    return [
        f"publication {r[0]} replicates the counters: readers on its subscribers are not "
        f"visible here (give it a column list without them)"
        for r in rows
    ]


def columns_present(conn: psycopg.Connection[Any], settings: Settings) -> list[str]:
    """Which of the deprecated columns still exist."""
    table, columns = deprecated_columns(settings)
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname = ANY(%s) AND NOT attisdropped ORDER BY attnum",
        (table, columns),
    ).fetchall()
    return [r[0] for r in rows]
