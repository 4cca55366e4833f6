"""Leadership per monitored database, shared fairly among replicas, on PostgreSQL advisory locks."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

import psycopg
from pydantic import SecretStr

from alerts import Clock
from config import DEFAULT_DATABASE, ConfigError, DqError, Settings
from monitor.db import (
    Target,
    Watchdog,
    WatchedConnection,
    connect,
    reply_limit,
    store_setting,
    translate,
)

log = logging.getLogger(__name__)

_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"
_JOIN = "SELECT pg_try_advisory_lock_shared(hashtextextended(%s, 0))"
# pg_locks shows an int8 advisory key as its high half in classid and its low half in objid,
# objsubid 1; advisory locks are per database, the view covers the whole cluster.
_HOLDERS = """
SELECT k.key, l.pid, l.mode
FROM unnest(%s::text[]) AS k(key)
JOIN pg_locks AS l
  ON l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
 AND ((l.classid::int8 << 32) | l.objid::int8) = hashtextextended(k.key, 0)
"""
# The server's own keepalives on each lock session: without them, a replica whose host or
# network vanished keeps its locks until the server's kernel gives up (two hours by default).
_SERVER_KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '10', false),"
    " set_config('tcp_keepalives_interval', '5', false),"
    " set_config('tcp_keepalives_count', '3', false),"
    " set_config('tcp_user_timeout', %s, false)"
)


def leader_key(state_schema: str, name: str) -> str:
    """The advisory lock key of one database's leadership.

    The database named `default` keeps the key of the single-database leader lock, so during
    a rolling upgrade an old and a new replica never both lead it.
    """
    base = f"dq-monitor-leader:{state_schema}"
    return base if name == DEFAULT_DATABASE else f"{base}:{name}"


def members_key(state_schema: str) -> str:
    """The advisory key every replica holds shared, so that replicas can count each other."""
    return f"dq-monitor-members:{state_schema}"


def state_url(settings: Settings) -> SecretStr:
    """The state database's URL: state_database_url, else the (first) monitored database's."""
    if settings.state_database_url is not None:
        return settings.state_database_url
    monitored = settings.monitored()
    if not monitored:
        raise ConfigError("no state database: set DQ_STATE_DATABASE_URL or DQ_DATABASE_URL")
    return monitored[0].url


@dataclass(frozen=True)
class LockView:
    """What pg_locks showed at one poll: how many replicas are members, who holds what."""

    members: int
    holders: dict[str, int]  # database -> backend pid of the session holding its lock


@dataclass
class _Held:
    conn: WatchedConnection
    since: int  # the poll that took the lock


class Leaderships:
    """The databases this replica leads: one advisory lock each, shared fairly with the others.

    Each lock lives on its own session in the state database, so a replica that dies or loses
    a session loses exactly those databases, and another replica takes them at its next poll.
    Every replica also holds a shared "membership" lock on one more session (which reads
    pg_locks too), so K replicas can count each other with no table of their own, and each
    aims at ceil(M/K) of the M databases:

    - under its share, a replica takes free locks, in an order of its own (a hash of the
      replica and the database, so replicas do not all reach for the same ones first);
    - over its share, it releases the surplus it has held for at least one poll, as long as
      some other replica has room for it;
    - a database still free at a replica's second look is taken even over share: nobody is
      left unled for fairness's sake. Such an adoption means the others are not taking, so
      no surplus goes back until the number of replicas changes (no flapping).

    A session that cannot be confirmed steps down for its database at once; one that stops
    answering is abandoned by the watchdog, like any query's.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        names: Sequence[str],
        *,
        replica: str = "",
        busy: Callable[[str], bool] | None = None,
    ) -> None:
        """`names`: the monitored databases, in configuration order; `replica`: this replica's
        tag for the take order (random if empty); `busy(name)`: whether a database's checks
        run now on this replica, so that a hand-over never lets two replicas run them. A
        hand-over withdraws leads(name), then asks `busy` again: a job must check leads()
        and count itself running atomically with what `busy` reads."""
        repeated = sorted({name for name in names if list(names).count(name) > 1})
        if repeated:
            raise ConfigError(f"leadership: database names repeat: {', '.join(repeated)}")
        self._url = state_url(settings)
        self._settings = settings
        self._keys = {name: leader_key(settings.state_schema, name) for name in names}
        self._members_key = members_key(settings.state_schema)
        self.replica = replica or secrets.token_hex(8)
        self.names = tuple(names)
        self._busy = busy or (lambda _name: False)
        self._order = sorted(names, key=lambda n: _rank(self.replica, n))
        self._member: WatchedConnection | None = None
        self._held: dict[str, _Held] = {}
        self._led: frozenset[str] = frozenset()
        self._seen_free: frozenset[str] = frozenset()
        self._settled_at: int | None = None  # replica count at which surplus stays put
        self._polls = 0
        self._lock = threading.Lock()
        self._watchdog = Watchdog("leader locks", reply_limit(settings), clock)
        self._released = False

    def leads(self, name: str) -> bool:
        """Whether this replica leads `name` now (cheap and thread-safe: every job asks)."""
        return name in self._led

    def led(self) -> frozenset[str]:
        """The databases this replica leads now (dq_leader{database} is 1 for each of
        `names` this holds)."""
        return self._led

    def backend_pids(self) -> dict[str, int]:
        """The server pid of each lock session ("" for the membership session): diagnostics."""
        held_now = dict(self._held)  # a copy: a poll may change it meanwhile
        pids = {name: held.conn.info.backend_pid for name, held in held_now.items()}
        if self._member is not None and not self._member.closed:
            pids[""] = self._member.info.backend_pid
        return pids

    def poll(self) -> frozenset[str]:
        """Confirm the locks held, take or release some for fairness; returns the led ones."""
        with self._lock:
            if self._released:
                return self._led
            self._polls += 1
            for name in list(self._held):
                self._confirm(name)
            view = self._view()
            if view is not None:
                self._rebalance(view)
            if self._released:  # release() gave up waiting for this poll: finish its work
                for name in list(self._held):
                    self._drop(name)
                self._close_member()
                self._watchdog.close()
            return self._led

    def release(self, timeout: float = 1.0) -> None:
        """Give up every lock (closing a session releases its lock); waits at most `timeout`
        seconds for a poll in progress, then abandons its sessions instead."""
        # First, so that a poll in progress takes nothing more and drops what it has.
        self._released = True
        self._led = frozenset()
        if not self._lock.acquire(timeout=timeout):
            # A poll is stuck on a session that stopped answering: abandoning it wakes the
            # poll, which drops the sessions itself.
            self._watchdog.interrupt()
            return
        try:
            for name in list(self._held):
                self._drop(name)
            self._close_member()
        finally:
            self._lock.release()
        self._watchdog.close()

    def _confirm(self, name: str) -> None:
        held = self._held[name]
        try:
            if held.conn.closed or held.conn.broken:
                raise StoreSessionLost
            held.conn.execute("SELECT 1")
        except (DqError, psycopg.Error, StoreSessionLost) as exc:
            log.warning("lost leadership of database %s: %s", name, self._describe(exc),
                        extra={"database": name})  # fmt: skip
            self._drop(name)

    def _view(self) -> LockView | None:
        """Join the members (once per session) and read who holds what; None if unreadable."""
        try:
            if self._member is None or self._member.closed or self._member.broken:
                self._close_member()
                conn = self._connect()
                conn.execute(_JOIN, (self._members_key,))
                self._member = conn
            keys = [self._members_key, *self._keys.values()]
            rows = self._member.execute(_HOLDERS, (keys,)).fetchall()
        except (DqError, psycopg.Error) as exc:
            log.debug("leadership: cannot read the lock table: %s", self._describe(exc))
            self._close_member()
            return None
        by_key = {key: name for name, key in self._keys.items()}
        holders = {by_key[key]: pid for key, pid, mode in rows if mode == "ExclusiveLock"}
        members = sum(1 for key, _pid, mode in rows if key == self._members_key
                      and mode == "ShareLock")  # fmt: skip
        return LockView(max(members, 1), holders)

    def _rebalance(self, view: LockView) -> None:
        for name, held in list(self._held.items()):
            if view.holders.get(name) != held.conn.info.backend_pid:
                log.warning("lost leadership of database %s: the server shows no lock of this "
                            "replica's", name, extra={"database": name})  # fmt: skip
                self._drop(name)
        share = math.ceil(len(self._keys) / view.members)
        if self._settled_at is not None and self._settled_at != view.members:
            self._settled_at = None
        free = [n for n in self._order if n not in view.holders and n not in self._held]
        for name in free:
            under = len(self._held) < share
            if (under or name in self._seen_free) and self._take(name) and not under:
                self._settled_at = view.members
        self._seen_free = frozenset(n for n in free if n not in self._held)
        if self._settled_at is not None:
            return
        others = len(view.holders.keys() - self._held.keys())
        room = (view.members - 1) * share - others
        surplus = min(len(self._held) - share, room)
        settled = [n for n in reversed(self._order) if n in self._held
                   and self._held[n].since < self._polls and not self._busy(n)]  # fmt: skip
        for name in settled[: max(surplus, 0)]:
            self._hand_over(name, share)

    def _take(self, name: str) -> bool:
        if self._released:
            return False
        try:
            conn = self._connect()
        except DqError as exc:
            log.debug("leadership: cannot open a lock session: %s", exc)
            return False
        try:
            row = conn.execute(_TRY_LOCK, (self._keys[name],)).fetchone()
        except psycopg.Error:
            conn.close()
            return False
        if not (row and row[0]):  # another replica took it since the lock table was read
            conn.close()
            return False
        self._held[name] = _Held(conn, self._polls)
        self._publish()
        log.info("this replica now leads database %s and runs its checks", name,
                 extra={"database": name})  # fmt: skip
        return True

    def _hand_over(self, name: str, share: int) -> None:
        """Release a surplus lock explicitly (at once, not when the backend has ended)."""
        held = self._held[name]
        self._publish(exclude=name)  # no job of this database starts from here on
        if self._busy(name):
            # A job that saw leads() just before that has started since `busy` was asked:
            # releasing now would let another replica run the database's checks beside it.
            self._publish()
            return
        with suppress(psycopg.Error):  # closing the session below releases it all the same
            held.conn.execute(_UNLOCK, (self._keys[name],))
        self._drop(name)
        log.info("handed database %s over to another replica (share %d)", name, share,
                 extra={"database": name})  # fmt: skip

    def _connect(self) -> WatchedConnection:
        conn = connect(
            self._url,
            purpose="state store",
            connect_timeout=self._settings.connect_timeout,
            setting=store_setting(self._settings),
            watchdog=self._watchdog,
        )
        try:
            timeout_ms = max(1000, int(self._settings.connect_timeout.total_seconds() * 1000))
            conn.execute(_SERVER_KEEPALIVES, (str(timeout_ms),))
        except psycopg.Error as exc:
            conn.close()
            raise self._translate(exc) from None
        return conn

    def _drop(self, name: str) -> None:
        held = self._held.pop(name)
        self._publish()
        held.conn.close()

    def _publish(self, exclude: str = "") -> None:
        """What leads() answers; nothing once released (a stuck poll may still be finishing)."""
        self._led = frozenset() if self._released else frozenset(self._held.keys() - {exclude})

    def _close_member(self) -> None:
        if self._member is not None:
            try:
                self._member.close()
            finally:
                self._member = None

    def _translate(self, exc: psycopg.Error) -> DqError:
        target = Target(self._url, "state store", store_setting(self._settings))
        return translate(exc, target, "holding the leader locks")

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, psycopg.Error):
            return str(self._translate(exc))
        if isinstance(exc, StoreSessionLost):
            return "its lock session was lost"
        return str(exc)


class StoreSessionLost(Exception):
    """A lock session found closed or broken before it could be confirmed."""


def _rank(replica: str, name: str) -> bytes:
    return hashlib.sha256(f"{replica}\0{name}".encode()).digest()


class Leadership:
    """The single-database service's leader lock: Leaderships over the one database `default`
    (same key as before), until the service schedules several databases."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.leaderships = Leaderships(settings, clock, [DEFAULT_DATABASE])

    @property
    def is_leader(self) -> bool:
        return self.leaderships.leads(DEFAULT_DATABASE)

    def poll(self) -> bool:
        """Confirm leadership, or try to take it; returns whether this replica leads now."""
        return DEFAULT_DATABASE in self.leaderships.poll()

    def release(self, timeout: float = 1.0) -> None:
        self.leaderships.release(timeout)
