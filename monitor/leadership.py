"""Leader election among replicas: a PostgreSQL advisory lock held on a dedicated session."""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from pydantic import SecretStr

from config import DqError, Settings

from .database import Target, connect, store_setting, translate

log = logging.getLogger(__name__)


class Leadership:
    """Holds (or keeps trying to take) the leader lock in the state database.

    Only the leader runs checks. The lock lives as long as its session: if this process dies
    or its connection is lost, the server releases it and another replica takes over at its
    next poll. A leader that cannot confirm its session steps down at once.
    """

    def __init__(self, settings: Settings) -> None:
        url = settings.state_database_url or settings.database_url
        assert url is not None
        self._url: SecretStr = url
        self._settings = settings
        self._key = f"dq-monitor-leader:{settings.state_schema}"
        self._conn: psycopg.Connection[Any] | None = None
        self._leader = threading.Event()
        self._lock = threading.Lock()

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

    def release(self) -> None:
        """Give up leadership (closing the session releases the lock)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._leader.clear()
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
