"""What the catalog says about one table, to prove a migration changed exactly what it planned.

A snapshot lists the table itself (owner, row security, replica identity, grants), its
columns, indexes, constraints (and foreign keys of other tables that reference it), triggers,
policies, rules, and every object that pg_depend records as depending on it (views,
statistics, publications, generated columns' expressions, sequences...). Comparing the
snapshots taken before and after the migration SQL, inside its transaction, shows anything it
dropped or added, however it did so (CASCADE, a function, dynamic SQL).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg

# Each query yields (kind, name, detail, owner): `owner` names the column an item belongs to
# (the column itself, its default, its NOT NULL constraint), so dropping that column may
# remove the item; it is NULL for items that must survive.
_SNAPSHOT = """
SELECT 'table', c.oid::regclass::text, concat_ws(' ', 'owner ' || c.relowner::regrole::text,
       'rls ' || c.relrowsecurity::text, 'force_rls ' || c.relforcerowsecurity::text,
       'replica_identity ' || c.relreplident::text, 'acl ' || c.relacl::text,
       'options ' || array_to_string(c.reloptions, ',')), NULL
  FROM pg_class c WHERE c.oid = %(t)s::regclass
UNION ALL
SELECT 'column', a.attname, concat_ws(' ', format_type(a.atttypid, a.atttypmod),
       CASE WHEN a.attnotnull THEN 'NOT NULL' END,
       CASE WHEN a.attgenerated <> '' THEN 'GENERATED ' || a.attgenerated::text || ' AS ('
            || pg_get_expr(d.adbin, d.adrelid) || ')'
            ELSE 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) END,
       CASE WHEN a.attidentity <> '' THEN 'IDENTITY ' || a.attidentity::text END,
       'collation ' || nullif(a.attcollation, 0)::regcollation::text,
       'acl ' || a.attacl::text), a.attname
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), NULL
  FROM pg_index i WHERE i.indrelid = %(t)s::regclass
UNION ALL
SELECT CASE WHEN k.conrelid = %(t)s::regclass THEN 'constraint' ELSE 'foreign key' END,
       CASE WHEN k.conrelid = %(t)s::regclass THEN k.conname
            ELSE k.conrelid::regclass::text || '.' || k.conname END,
       pg_get_constraintdef(k.oid),
       CASE WHEN k.contype = 'n' AND cardinality(k.conkey) = 1 THEN
            (SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid
              AND attnum = k.conkey[1]) END
  FROM pg_constraint k WHERE k.conrelid = %(t)s::regclass OR k.confrelid = %(t)s::regclass
UNION ALL
SELECT 'trigger', g.tgname, pg_get_triggerdef(g.oid), NULL
  FROM pg_trigger g WHERE g.tgrelid = %(t)s::regclass
UNION ALL
SELECT 'policy', p.polname, concat_ws(' ', p.polcmd::text, p.polpermissive::text, p.polroles::text,
       'USING ' || pg_get_expr(p.polqual, p.polrelid),
       'WITH CHECK ' || pg_get_expr(p.polwithcheck, p.polrelid)), NULL
  FROM pg_policy p WHERE p.polrelid = %(t)s::regclass
UNION ALL
SELECT 'rule', r.rulename, pg_get_ruledef(r.oid), NULL
  FROM pg_rewrite r WHERE r.ev_class = %(t)s::regclass
UNION ALL
SELECT 'dependent', pg_describe_object(d.classid, d.objid, d.objsubid),
       concat_ws(' ', 'deptype ' || d.deptype::text, 'on column ' || a.attname),
       CASE WHEN d.classid = 'pg_attrdef'::regclass THEN
            (SELECT attname FROM pg_attribute, pg_attrdef ad WHERE ad.oid = d.objid
              AND attrelid = ad.adrelid AND attnum = ad.adnum)
            WHEN d.classid = 'pg_constraint'::regclass THEN
            (SELECT attname FROM pg_attribute, pg_constraint k WHERE k.oid = d.objid
              AND k.contype = 'n' AND cardinality(k.conkey) = 1
              AND attrelid = k.conrelid AND attnum = k.conkey[1]) END
  FROM pg_depend d
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
       AND d.refobjsubid > 0
 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(t)s::regclass
"""


@dataclass(frozen=True)
class Item:
    kind: str
    name: str
    detail: str
    owner: str | None  # the column this belongs to, if any

    def describe(self) -> str:
        what = f"{self.kind} {self.name}"
        return f"{what} ({self.detail})" if self.detail else what


def snapshot(conn: psycopg.Connection[Any], table: str) -> frozenset[Item]:
    """The catalog's view of `table` now (in the connection's transaction)."""
    rows = conn.execute(_SNAPSHOT, {"t": table}).fetchall()
    return frozenset(Item(str(r[0]), str(r[1]), str(r[2] or ""), r[3]) for r in rows)


def unplanned_changes(
    before: frozenset[Item], after: frozenset[Item], dropped: Collection[str]
) -> list[str]:
    """What changed besides the `dropped` columns (and their defaults and NOT NULL)."""
    removed = sorted(
        (i for i in before - after if i.owner not in dropped), key=lambda i: (i.kind, i.name)
    )
    added = sorted(after - before, key=lambda i: (i.kind, i.name))
    missing = [c for c in dropped if any(i.kind == "column" and i.name == c for i in after)]
    return (
        [f"removed {i.describe()}" for i in removed]
        + [f"added {i.describe()}" for i in added]
        + [f"column {c} is still there" for c in missing]
    )
