"""Leader election among replicas: a PostgreSQL advisory lock held on a dedicated session."""

from __future__ import annotations

import logging
import threading

import psycopg
from pydantic import SecretStr

from alerts import Clock
from config import DqError, Settings
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


class Leadership:
    """Holds (or keeps trying to take) the leader lock in the state database.

    Only the leader runs checks. The lock lives as long as its session: if this process dies
    or its connection is lost, the server releases it and another replica takes over at its
    next poll. A leader that cannot confirm its session steps down at once, and a session that
    stops answering is abandoned by its watchdog like any other query's.
    """

    def __init__(self, settings: Settings, clock: Clock) -> None:
        url = settings.state_database_url or settings.database_url
        assert url is not None
        self._url: SecretStr = url
        self._settings = settings
        self._key = f"dq-monitor-leader:{settings.state_schema}"
        self._conn: WatchedConnection | None = None
        self._leader = threading.Event()
        self._lock = threading.Lock()
        self._watchdog = Watchdog("leader lock", reply_limit(settings), clock)

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def poll(self) -> bool:
        """Confirm leadership, or try to take it; returns whether this replica leads now."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._drop()
                    self._conn = connect(
                        self._url,
                        purpose="state store",
                        connect_timeout=self._settings.connect_timeout,
                        setting=store_setting(self._settings),
                        watchdog=self._watchdog,
                    )
                if self.is_leader:
                    self._conn.execute("SELECT 1")
                else:
                    row = self._conn.execute(
                        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._key,)
                    ).fetchone()
                    if row and row[0]:
                        self._leader.set()
                        log.info("this replica is now the leader and runs the checks")
            except (DqError, psycopg.Error) as exc:
                if isinstance(exc, psycopg.Error):
                    target = Target(self._url, "state store", store_setting(self._settings))
                    exc = translate(exc, target, "holding the leader lock")
                if self.is_leader:
                    log.warning("lost leadership: %s", exc)
                self._drop()
            return self.is_leader

    def release(self, timeout: float = 1.0) -> None:
        """Give up leadership (closing the session releases the lock); waits at most `timeout`
        seconds for a poll in progress, then abandons its session instead."""
        self._leader.clear()
        if not self._lock.acquire(timeout=timeout):
            # A poll is stuck on a session that stopped answering: abandoning it wakes the
            # poll, which drops the session itself.
            self._watchdog.interrupt()
            return
        try:
            self._drop()
        finally:
            self._lock.release()
        self._watchdog.close()

    def _drop(self) -> None:
        self._leader.clear()
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
