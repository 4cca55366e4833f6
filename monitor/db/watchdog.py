"""A client-side bound on every wait for the server: cancel a silent query, then abandon it.

statement_timeout is enforced by the server, so it ends nothing when the server, or something
between it and us, stops answering while the TCP connection stays up (a wedged proxy or
load balancer, a frozen VM, a stuck storage layer under the server). The kernel still
acknowledges what we send, so keepalives and the TCP user timeout see nothing wrong either.

Every connection handed out by a `ConnectionSource` (and the leader's session) is a
`WatchedConnection`: each time it waits for the server it tells its source's `Watchdog`, and
the watchdog's one thread steps in when a wait outlives the limit (statement_timeout plus
query_grace): it sends a cancel request; if the wait is still not over `CANCEL_WAIT` later,
it shuts the connection's socket down. That wakes the waiting thread at once with a lost
connection (so the caller's error path runs and the pool discards the connection), without
closing the descriptor under it and without touching libpq's state from another thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.rows import TupleRow

from alerts import Clock
from config import Settings

log = logging.getLogger(__name__)

#: Seconds a cancel request gets to end a query before its connection is abandoned.
CANCEL_WAIT = 1.0
CANCELLED, ABANDONED = "cancelled", "abandoned"

RV = TypeVar("RV")


def reply_limit(settings: Settings) -> float:
    """Seconds any query may wait for the server before the watchdog steps in."""
    return (settings.statement_timeout + settings.query_grace).total_seconds()


class WatchedConnection(psycopg.Connection[TupleRow]):
    """A psycopg connection that reports every wait for the server to its watchdog.

    `intervention` says what the watchdog did during the current checkout, if anything:
    CANCELLED (a cancel request went out) or ABANDONED (the socket was shut down).
    """

    watchdog: Watchdog | None = None
    intervention: str | None = None

    # Connection.wait is the one place psycopg waits for the server (queries, COPY, commit,
    # rollback, the pool's health check); connecting and cancelling have their own timeouts.
    def wait(self, gen: PQGen[RV], *args: Any, **kwargs: Any) -> RV:
        dog = self.watchdog
        if dog is None:
            return super().wait(gen, *args, **kwargs)
        entry = dog.begin(self)
        try:
            return super().wait(gen, *args, **kwargs)
        finally:
            dog.end(entry)


@dataclass(eq=False)
class _Wait:
    conn: WatchedConnection
    deadline: float
    abandon_at: float | None = None  # set when the cancel request goes out


class Watchdog:
    """One thread per database that cancels, then abandons, waits longer than `limit` seconds.

    `interrupt()` (used at shutdown) treats every current and later wait as overdue at once.
    Time comes from the injected clock; the thread sleeps on a condition until the next
    deadline and does nothing at all while no query is waiting.
    """

    def __init__(self, name: str, limit: float, clock: Clock) -> None:
        self.name = name
        self.limit = limit
        self.clock = clock
        self._cond = threading.Condition()
        self._waits: dict[WatchedConnection, _Wait] = {}
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread waits without a timeout: a new wait must wake it
        self._interrupting = False
        self._closed = False

    def watch(self, conn: psycopg.Connection[Any]) -> None:
        """Put a connection under this watchdog (the pool's `configure` callback)."""
        if isinstance(conn, WatchedConnection):
            conn.watchdog = self

    def begin(self, conn: WatchedConnection) -> _Wait:
        with self._cond:
            now = self.clock.monotonic()
            entry = _Wait(conn, now if self._interrupting else now + self.limit)
            self._waits[conn] = entry
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name=f"watchdog {self.name}", daemon=True
                )
                self._thread.start()
            if self._idle or self._interrupting:
                self._cond.notify()
        return entry

    def end(self, entry: _Wait) -> None:
        with self._cond:
            if self._waits.get(entry.conn) is entry:
                del self._waits[entry.conn]

    def interrupt(self) -> None:
        """Cancel every query waiting now or later; abandon those that stay silent."""
        with self._cond:
            self._interrupting = True
            now = self.clock.monotonic()
            for entry in self._waits.values():
                entry.deadline = min(entry.deadline, now)
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread; connections stay as they are."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                cancels, wake = self._step(self.clock.monotonic())
                if not cancels:
                    self._idle = wake is None
                    self._cond.wait(None if wake is None else min(max(wake, 0.01), 1.0))
                    self._idle = False
                    continue
            for conn in cancels:
                # cancel_safe opens a connection of its own and can take up to CANCEL_WAIT:
                # off this thread, so one silent server does not delay the other deadlines.
                threading.Thread(
                    target=_cancel, args=(conn,), name=f"cancel {self.name}", daemon=True
                ).start()

    def _step(self, now: float) -> tuple[list[WatchedConnection], float | None]:
        """Act on overdue waits (lock held); returns the cancels to send and the next wake-up."""
        cancels: list[WatchedConnection] = []
        wake: float | None = None
        for entry in list(self._waits.values()):
            if entry.abandon_at is None and now >= entry.deadline:
                entry.abandon_at = now + CANCEL_WAIT
                entry.conn.intervention = CANCELLED
                cancels.append(entry.conn)
            elif entry.abandon_at is not None and now >= entry.abandon_at:
                if entry.conn.intervention != ABANDONED:
                    # Still registered, so the socket is still this connection's: its owner
                    # cannot close it (and the descriptor be reused) before end() runs.
                    entry.conn.intervention = ABANDONED
                    _shut_down(entry.conn)
                    log.debug("%s: no answer within %.1fs; abandoned a connection",
                              self.name, self.limit)  # fmt: skip
                continue
            due = entry.abandon_at if entry.abandon_at is not None else entry.deadline
            wake = due - now if wake is None else min(wake, due - now)
        return cancels, wake


def _cancel(conn: WatchedConnection) -> None:
    with suppress(Exception):  # a cancel that fails or times out is answered by abandoning
        conn.cancel_safe(timeout=CANCEL_WAIT)


def _shut_down(conn: WatchedConnection) -> None:
    """Shut the socket down in both directions; the waiting thread sees the connection lost."""
    # A duplicate descriptor: closing it leaves the connection's own one alone.
    with suppress(OSError, psycopg.Error), socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.shutdown(socket.SHUT_RDWR)
