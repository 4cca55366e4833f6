"""Check memory in the state store: per-key JSON values a check keeps between runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from checks import Memory, MemoryUpdate

from .tables import qualified


def load(conn: psycopg.Connection[Any], schema: str, check: str, fingerprint: str) -> Memory | None:
    """What `check` remembers, or None when it remembers nothing for these settings (it
    never ran, or its fingerprint changed since its baseline: then it must start over)."""
    base = conn.execute(
        sql.SQL("SELECT fingerprint FROM {} WHERE check_name = %s").format(
            qualified(schema, "check_memory_baselines")
        ),
        (check,),
    ).fetchone()
    if base is None or base[0] != fingerprint:
        return None
    # One document parsed once: decoding a value per row costs more than the query does.
    row = conn.execute(
        sql.SQL(
            "SELECT coalesce(json_object_agg(key, value), '{{}}') FROM {} WHERE check_name = %s"
        ).format(qualified(schema, "check_memory")),
        (check,),
    ).fetchone()
    entries = row[0] if row else {}
    assert isinstance(entries, dict)
    return Memory(entries)


def save(
    conn: psycopg.Connection[Any],
    schema: str,
    check: str,
    fingerprint: str,
    update: MemoryUpdate,
    *,
    at: dt.datetime,
) -> None:
    """Apply `update` in the caller's transaction: only the keys it names are written, so a
    cycle that changes a few keys of a large memory costs a few rows."""
    entries = qualified(schema, "check_memory")
    if update.replace:
        conn.execute(sql.SQL("DELETE FROM {} WHERE check_name = %s").format(entries), (check,))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (check_name, taken_at, fingerprint) VALUES (%s, %s, %s)"
                " ON CONFLICT (check_name) DO UPDATE"
                " SET taken_at = excluded.taken_at, fingerprint = excluded.fingerprint"
            ).format(qualified(schema, "check_memory_baselines")),
            (check, at, fingerprint),
        )
    else:
        # COPY cannot update a row in place: the keys put again are deleted first.
        stale = [*update.drop, *update.put]
        if stale:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE check_name = %s AND key = ANY(%s)").format(entries),
                (check, stale),
            )
    if not update.put:
        return
    with conn.cursor().copy(
        sql.SQL("COPY {} (check_name, key, value) FROM STDIN").format(entries)
    ) as copy:
        for key, value in update.put.items():
            copy.write_row((check, key, Jsonb(value)))
