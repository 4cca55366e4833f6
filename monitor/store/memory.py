"""Check memory in the state store: per-key JSON values a check keeps between runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from checks import JsonValue, Memory, MemoryUpdate

from .tables import qualified

#: A check's summary lives in check_memory under this name: check names cannot hold "/", and
#: the entries keep their rows (and the upgrade that kept the counter ledger its meaning).
SUMMARY = "{}/summary"

Session = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


def load(
    conn: psycopg.Connection[Any],
    schema: str,
    check: str,
    fingerprint: str,
    *,
    lazy_via: Session | None = None,
) -> Memory | None:
    """What `check` remembers, or None when it remembers nothing for these settings (it
    never ran, or its fingerprint changed since its baseline: then it must start over).

    With `lazy_via` only the summary is read now; the entries are looked up by key later,
    each lookup in a session of its own."""
    base = conn.execute(
        sql.SQL("SELECT fingerprint FROM {} WHERE check_name = %s").format(
            qualified(schema, "check_memory_baselines")
        ),
        (check,),
    ).fetchone()
    if base is None or base[0] != fingerprint:
        return None
    if lazy_via is None:
        return Memory(_entries(conn, schema, check, None))
    summary = _entries(conn, schema, SUMMARY.format(check), None)

    def lookup(keys: Collection[str] | None) -> Mapping[str, JsonValue]:
        with lazy_via() as session:
            return _entries(session, schema, check, keys)

    return Memory(summary=summary, lookup=lookup)


def _entries(
    conn: psycopg.Connection[Any], schema: str, check: str, keys: Collection[str] | None
) -> dict[str, JsonValue]:
    # One document parsed once: decoding a value per row costs more than the query does.
    query = sql.SQL(
        "SELECT coalesce(json_object_agg(key, value), '{{}}') FROM {} WHERE check_name = %s"
    ).format(qualified(schema, "check_memory"))
    if keys is not None:
        query += sql.SQL(" AND key = ANY(%s)")
    row = conn.execute(query, (check,) if keys is None else (check, list(keys))).fetchone()
    entries = row[0] if row else {}
    assert isinstance(entries, dict)
    return entries


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
    summary = SUMMARY.format(check)
    if update.replace:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE check_name = ANY(%s)").format(
                qualified(schema, "check_memory")
            ),
            ([check, summary],),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (check_name, taken_at, fingerprint) VALUES (%s, %s, %s)"
                " ON CONFLICT (check_name) DO UPDATE"
                " SET taken_at = excluded.taken_at, fingerprint = excluded.fingerprint"
            ).format(qualified(schema, "check_memory_baselines")),
            (check, at, fingerprint),
        )
    _write(conn, schema, check, update.put, update.drop, fresh=update.replace)
    _write(conn, schema, summary, update.summary_put, update.summary_drop, fresh=update.replace)


def _write(
    conn: psycopg.Connection[Any],
    schema: str,
    name: str,
    put: Mapping[str, JsonValue],
    drop: frozenset[str],
    *,
    fresh: bool,
) -> None:
    entries = qualified(schema, "check_memory")
    # COPY cannot update a row in place: the keys put again are deleted first.
    stale = [] if fresh else [*drop, *put]
    if stale:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE check_name = %s AND key = ANY(%s)").format(entries),
            (name, stale),
        )
    if not put:
        return
    with conn.cursor().copy(
        sql.SQL("COPY {} (check_name, key, value) FROM STDIN").format(entries)
    ) as copy:
        for key, value in put.items():
            copy.write_row((name, key, Jsonb(value)))
