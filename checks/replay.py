"""Checks on a hot standby: the point its data was replayed to, and whether it is too far behind."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from config import QueryFailed, SetupError, format_duration

# Read in autocommit before the snapshot begins, so everything committed on the primary before
# `replayed_at` is visible in the snapshot taken right after.
_REPLAY = (
    "SELECT pg_is_in_recovery(), now(), pg_last_xact_replay_timestamp(),"
    " pg_last_wal_receive_lsn()::text,"
    " pg_last_wal_receive_lsn() IS NOT NULL"
    " AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(),"
    " coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false),"
    " coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'its socket')"
)
# A burst after an idle spell: the standby received WAL a moment ago and is replaying it, while
# its last replayed commit is as old as the idle spell. Replaying what it had received within
# this many 50 ms steps (the server's own pg_sleep) makes it caught up as of the first read.
_CATCH_UP_STEPS = 20
_CAUGHT_UP = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"


@dataclass(frozen=True)
class Replay:
    """Where a standby's data stands: `as_of` is the time the settle window counts back from."""

    as_of: dt.datetime
    lag: dt.timedelta
    caught_up: bool


def replay_point(conn: psycopg.Connection[Any], max_lag: dt.timedelta) -> Replay:
    """How current the standby's data is, by the database's clocks (the primary's commit
    times and the standby's now()), never ours.

    Idle or behind: a standby whose WAL receiver is streaming and has replayed all it
    received (pg_last_wal_replay_lsn() reached pg_last_wal_receive_lsn(), at once or within
    about a second) is caught up: an idle primary sends nothing, so the last replayed
    commit ages without the standby falling behind, and its data is as of now(). Otherwise
    (replay paused or slow, or the receiver not streaming, when nobody can tell what the
    primary has) its data is as of the last replayed commit, and now() minus that is the
    lag: an upper bound, since the first commit it has not replayed may be younger.

    Raises SetupError when the server is not a standby, QueryFailed when it is further
    behind than `max_lag` or has replayed no transaction since it started; psycopg errors.
    """
    row = conn.execute(_REPLAY).fetchone()
    assert row is not None
    in_recovery, now, replayed_at, received, replayed_all, streaming, where = row
    if not in_recovery:
        raise SetupError(
            f'check_on = "standby": the server at {where} is not a standby (not in recovery; '
            "promoted?); point the database's first standby_urls entry at a hot standby"
        )
    if streaming and received is not None and (replayed_all or _catches_up(conn, received)):
        return Replay(now, dt.timedelta(0), caught_up=True)
    if replayed_at is None:
        raise QueryFailed(
            f"the standby at {where} has replayed no transaction since it started, so how far "
            "behind it is cannot be told; its data is not judged (check its replication)"
        )
    lag = max(now - replayed_at, dt.timedelta(0))
    if lag > max_lag:
        receiver = "replaying" if streaming else "not streaming from the primary"
        last = replayed_at.astimezone(dt.UTC)
        raise QueryFailed(
            f"the standby at {where} is {format_duration(_whole(lag))} behind the primary "
            f"(last replayed commit at {last:%Y-%m-%d %H:%M:%S} UTC, {receiver}), more "
            f"than max_replay_lag {format_duration(max_lag)}; its data is not judged"
        )
    return Replay(replayed_at, lag, caught_up=False)


def _catches_up(conn: psycopg.Connection[Any], received: str) -> bool:
    for _ in range(_CATCH_UP_STEPS):
        conn.execute("SELECT pg_sleep(0.05)")
        row = conn.execute(_CAUGHT_UP, (received,)).fetchone()
        if row and row[0]:
            return True
    return False


def _whole(delta: dt.timedelta) -> dt.timedelta:
    return dt.timedelta(seconds=round(delta.total_seconds()))
