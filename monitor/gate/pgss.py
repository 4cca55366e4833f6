"""pg_stat_statements as evidence: readers of the counters, and whether its coverage holds.

Read in the monitored database: the statements that could read the counters (by any role,
leaving out only dq-monitor's own statements, recognised by their text), statements whose
text the monitor may not see, settings that turn tracking off for a role or a database,
and every statement's call counter, which the gate keeps between evaluations to notice
targeted resets and evictions that pg_stat_statements_info does not record.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from config import Settings, noun
from monitor.gate.own_statements import recogniser
from monitor.gate.sqlreads import Target, reads
from monitor.gate.sqltext import MARKER_PREFIX, canonical
from monitor.store import Counters, Sample

HIDDEN = "<insufficient privilege>"
# What no evidence here can see; the gate report prints it under the readers.
UNDETECTABLE = (
    "dynamic SQL assembled at run time (EXECUTE of concatenated strings or format()); readers "
    "on replicas not listed in the database's standby_urls and on logical-replication "
    "subscribers; statements inside functions unless "
    "pg_stat_statements.track = all (their bodies are read from the catalog instead); a "
    "statement first run and then reset between two samples; superuser sessions that turn "
    "tracking off for themselves; a statement that copies one of dq-monitor's own exactly"
)
NO_BASELINE = (
    "no pg_stat_statements sample (with per-statement counters) from before the window began; "
    "each gate evaluation records one (the service every 5 minutes)"
)
_CURRENT_DB = "(SELECT oid FROM pg_database WHERE datname = current_database())"
_TRACKING = ("pg_stat_statements.track", "pg_stat_statements.track_utility")
_ON = frozenset({"on", "true", "yes", "1", "t", "tr", "tru", "y", "ye"})


@dataclass
class Snapshot:
    """What pg_stat_statements showed at one evaluation."""

    available: bool
    dealloc: int | None = None
    stats_reset: dt.datetime | None = None
    monitor_role: str = ""
    dbid: int = 0
    roles: dict[int, str] = field(default_factory=dict)
    counters: Counters = field(default_factory=dict)
    readers: list[dict[str, Any]] = field(default_factory=list)
    hidden: dict[str, int] = field(default_factory=dict)  # role -> statements not shown
    textless: int = 0  # statements whose text pg_stat_statements could not load
    untracked: list[str] = field(default_factory=list)  # "role x: track = none", ...


def snapshot(conn: psycopg.Connection[Any], settings: Settings, target: Target) -> Snapshot:
    """Read pg_stat_statements in the monitored database. Raises psycopg errors."""
    row = conn.execute(
        "SELECT n.nspname, current_user, " + _CURRENT_DB + "::bigint FROM pg_extension e"
        " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if row is None:
        return Snapshot(available=False)
    schema = sql.Identifier(str(row[0]))
    info = conn.execute(
        sql.SQL("SELECT dealloc, stats_reset FROM {}.pg_stat_statements_info").format(schema)
    ).fetchone()
    if info is None:
        return Snapshot(available=False)
    snap = Snapshot(True, int(info[0]), info[1], str(row[1]), int(row[2]))
    snap.roles = {int(r[0]): str(r[1]) for r in conn.execute("SELECT oid, rolname FROM pg_roles")}
    snap.counters = _counters(conn, str(row[0]))
    snap.readers, snap.hidden, snap.textless = _readers(conn, schema, settings, target)
    snap.untracked = _untracked(conn)
    # Read the coverage again last: reading the statements adds entries of its own, which can
    # evict a reader between the first read and the list. Comparing the later count with the
    # window's start then says "unknown" instead of missing it.
    after = conn.execute(
        sql.SQL("SELECT dealloc, stats_reset FROM {}.pg_stat_statements_info").format(schema)
    ).fetchone()
    if after is not None:
        snap.dealloc, snap.stats_reset = int(after[0]), after[1]
    return snap


def _counters(conn: psycopg.Connection[Any], schema: str) -> Counters:
    """Every statement's calls (and since when it is counted: PostgreSQL 17 and later)."""
    view = sql.Identifier(schema, "pg_stat_statements").as_string(None)
    since = conn.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname = 'stats_since'",
        (view,),
    ).fetchone()
    column = sql.SQL("stats_since" if since and since[0] else "NULL::timestamptz")
    rows = conn.execute(
        sql.SQL(
            "SELECT userid::bigint, dbid::bigint, queryid, toplevel, calls, {}"
            " FROM {}.pg_stat_statements(false)"
            " WHERE dbid = " + _CURRENT_DB + " AND queryid IS NOT NULL"
        ).format(column, sql.Identifier(schema))
    ).fetchall()
    return {(int(r[0]), int(r[1]), int(r[2]), bool(r[3])): (int(r[4]), r[5]) for r in rows}


def _readers(
    conn: psycopg.Connection[Any], schema: sql.Identifier, settings: Settings, target: Target
) -> tuple[list[dict[str, Any]], dict[str, int], int]:
    """Statements that could read the counters (not ours), statements hidden from the
    monitor's role (by role), and statements without text."""
    rows = conn.execute(
        sql.SQL(
            "SELECT coalesce(r.rolname, s.userid::text), s.calls, s.query"
            " FROM {}.pg_stat_statements s LEFT JOIN pg_roles r ON r.oid = s.userid"
            " WHERE s.dbid = " + _CURRENT_DB + " AND (s.query IS NULL OR s.query = %(hidden)s"
            " OR EXISTS (SELECT 1 FROM unnest(%(needles)s::text[]) AS n"
            "            WHERE strpos(lower(s.query), n) > 0))"
            " ORDER BY s.calls DESC"
        ).format(schema),
        {"hidden": HIDDEN, "needles": target.needles},
    ).fetchall()
    ours = recogniser(settings)
    found: list[dict[str, Any]] = []
    hidden: dict[str, int] = {}
    textless = 0
    for role, calls, query in rows:
        if query is None:
            textless += 1
            continue
        if query == HIDDEN:
            hidden[role] = hidden.get(role, 0) + 1
            continue
        if MARKER_PREFIX in query and canonical(query) in ours:
            continue
        why = reads(query, target)
        if why:
            short = re.sub(r"\s+", " ", query).strip()[:200]
            found.append({"role": role, "calls": int(calls), "query": short, "why": why[:3]})
    return found, hidden, textless


def _untracked(conn: psycopg.Connection[Any]) -> list[str]:
    """Settings under which pg_stat_statements misses statements in this database."""
    rows = conn.execute(
        "SELECT r.rolname, d.datname, cfg FROM pg_db_role_setting s"
        " LEFT JOIN pg_roles r ON r.oid = s.setrole"
        " LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS cfg"
        " WHERE s.setdatabase IN (0, " + _CURRENT_DB + ")"
        " AND starts_with(lower(cfg), 'pg_stat_statements.track') ORDER BY 1, 2, 3"
    ).fetchall()
    found = []
    for role, database, cfg in rows:
        name, _, value = str(cfg).partition("=")
        off = _off(name, value)
        if off is None:
            continue
        if role is None:
            who = f"database {database}" if database else "every role"
        else:
            who = f"role {role}" + (f" in database {database}" if database else "")
        found.append(f"{who}: {off}")
    current = conn.execute(
        "SELECT current_setting('pg_stat_statements.track', true),"
        " current_setting('pg_stat_statements.track_utility', true)"
    ).fetchone()
    for name, value in zip(_TRACKING, current or (), strict=False):
        off = _off(name, str(value)) if value is not None else None
        if off:
            found.append(f"the server (this session): {off}")
    return found + _may_turn_off(conn)


def _may_turn_off(conn: psycopg.Connection[Any]) -> list[str]:
    """Roles granted SET on the tracking parameters (PostgreSQL 15's pg_parameter_acl): they
    can turn tracking off in their own sessions, where no setting shows."""
    exists = conn.execute("SELECT to_regclass('pg_catalog.pg_parameter_acl')").fetchone()
    if not exists or exists[0] is None:
        return []
    rows = conn.execute(
        "SELECT DISTINCT coalesce(r.rolname, 'PUBLIC'), p.parname FROM pg_parameter_acl p"
        " CROSS JOIN LATERAL aclexplode(p.paracl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE a.privilege_type = 'SET' AND p.parname = ANY(%s) ORDER BY 1, 2",
        (list(_TRACKING),),
    ).fetchall()
    return [f"role {role} may SET {name} in its sessions (GRANT SET ON PARAMETER)"
            for role, name in rows]  # fmt: skip


def _off(name: str, value: str) -> str | None:
    """`track = none` or `track_utility = off` when the setting misses statements."""
    name, value = name.strip().lower(), value.strip().strip("'\"").lower()
    if name == "pg_stat_statements.track" and value not in ("top", "all"):
        return f"track = {value}"
    if name == "pg_stat_statements.track_utility" and value not in _ON:
        return f"track_utility = {value}"
    return None


@dataclass
class Coverage:
    """The sample the window is judged against, and statements lost since it began."""

    baseline: Sample | None
    lost: list[tuple[dt.datetime, int, str]]  # (detected at, how many, by whom)
    # Without a baseline: the first sample inside the window, and those after it whole
    # (PgssSamples.coverage_start). Only time can make it the baseline.
    since: tuple[dt.datetime, Sample] | None = None


def lost(previous: Counters, current: Counters, roles: dict[int, str]) -> tuple[int, str]:
    """How many of the previous sample's statements are gone, count fewer calls or were
    counted afresh (stats_since moved), and whose they were."""
    by_role: dict[str, int] = {}
    for key, (calls, since) in previous.items():
        now = current.get(key)
        if now is None or now[0] < calls or (since and now[1] and now[1] != since):
            role = roles.get(key[0], f"role {key[0]}")
            by_role[role] = by_role.get(role, 0) + 1
    detail = ", ".join(f"{role} ({n})" for role, n in sorted(by_role.items()))
    return sum(by_role.values()), detail


def verdict(snap: Snapshot, coverage: Coverage, blind: list[str] | None = None) -> dict[str, Any]:
    """The readers evidence: found, unknown (with every reason, `blind` ones included: where
    readers cannot be seen from here) or none."""
    if not snap.available:
        return {"status": "unknown", "reason": "pg_stat_statements is not installed in the "
                "monitored database (CREATE EXTENSION pg_stat_statements)",
                "undetectable": UNDETECTABLE}  # fmt: skip
    if snap.readers:
        who = "; ".join(f"{r['role']} ({r['calls']} calls, {', '.join(r['why'])}): {r['query']}"
                        for r in snap.readers[:5])  # fmt: skip
        return {"status": "found", "reason": f"statements could read the counters: {who}",
                "statements": snap.readers[:20], "undetectable": UNDETECTABLE}  # fmt: skip
    unknown = _gaps(snap, coverage) + list(blind or ())
    if unknown == [NO_BASELINE] and coverage.since is not None:
        # Whole since a sample inside the window: time alone completes it, nothing else does.
        at = coverage.since[0]
        return {"status": "unknown", "reason": f"{NO_BASELINE}; coverage is whole since "
                f"{at:%Y-%m-%d %H:%M} UTC, inside the window", "time_only": True,
                "coverage_since": at.isoformat(), "undetectable": UNDETECTABLE}  # fmt: skip
    if unknown:
        return {"status": "unknown", "reason": "; ".join(unknown), "undetectable": UNDETECTABLE}
    return {"status": "none", "reason": "no statement by any role reads the counters (besides "
            "dq-monitor's own) since the window began", "undetectable": UNDETECTABLE}  # fmt: skip


def _gaps(snap: Snapshot, coverage: Coverage) -> list[str]:
    """Every reason why a reader could have gone unseen."""
    found: list[str] = []
    if snap.hidden:
        roles = ", ".join(f"{role} ({n})" for role, n in sorted(snap.hidden.items()))
        found.append(
            f"the monitor's role cannot read the text of statements by {roles} (it shows as "
            f"{HIDDEN}): GRANT pg_read_all_stats TO {snap.monitor_role} (\"Database grants\" "
            "in the README)"
        )
    if snap.textless:
        n = snap.textless
        found.append(f"{n} {noun(n, 'statement')} {'has' if n == 1 else 'have'} no text "
                     "(pg_stat_statements could not read its query-text file)")  # fmt: skip
    if snap.untracked:
        found.append("pg_stat_statements does not track every statement: "
                     + "; ".join(snap.untracked) + " (RESET those settings)")  # fmt: skip
    base = coverage.baseline
    if base is None or not base.available or base.statements is None:
        found.append(NO_BASELINE)
        # Judged against the sample coverage began with: a reset or an eviction since then
        # is not something time will make good.
        base = coverage.since[1] if coverage.since is not None else None
    if base is not None and base.available and base.statements is not None:
        if snap.stats_reset is not None and snap.stats_reset != base.stats_reset:
            found.append(f"statistics were reset at {snap.stats_reset:%Y-%m-%d %H:%M} UTC, "
                         "after the window began")  # fmt: skip
        if snap.dealloc is not None and base.dealloc is not None and snap.dealloc > base.dealloc:
            n = snap.dealloc - base.dealloc
            found.append(f"{n} {noun(n, 'statement')} {'was' if n == 1 else 'were'} evicted "
                         "since the window began; raise pg_stat_statements.max")  # fmt: skip
    if coverage.lost:
        total = sum(n for _, n, _ in coverage.lost)
        at, _, detail = coverage.lost[-1]
        found.append(f"{total} {noun(total, 'statement')} disappeared or counted fewer calls "
                     f"since the window began (last seen at {at:%Y-%m-%d %H:%M} UTC; {detail}): "
                     "a targeted pg_stat_statements_reset() or an eviction")  # fmt: skip
    return found
