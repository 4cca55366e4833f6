"""A real streaming standby on loopback: its own embedded primary, pg_basebackup -R, hot standby."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from checks import reference_schema
from monitor.demo.embedded import EmbeddedPostgres

# How long the standby may take to replay what the primary wrote, or to come up: a wait for a
# condition with a deadline, never an assertion about how long something took.
_PATIENCE_SECONDS = 60.0


@dataclass
class StandbyPair:
    """A primary and its hot standby (pg_stat_statements preloaded on both), for one session.

    Tests that stop the standby, restart it without pg_stat_statements or pause its replay
    put it back (`restore()`) before they end, so the next test finds it streaming.
    """

    primary: EmbeddedPostgres
    standby: EmbeddedPostgres
    _changed: set[str] = field(default_factory=set)

    def primary_url(self, dbname: str = "postgres") -> str:
        return self.primary.url(dbname)

    def standby_url(self, dbname: str = "postgres") -> str:
        return self.standby.url(dbname)

    @property
    def standby_address(self) -> str:
        """host:port, as the gate report names the standby."""
        return f"127.0.0.1:{self.standby.port}"

    def create_database(self) -> str:
        """A fresh database with the reference schema, replayed on the standby; its name."""
        name = f"dq_standby_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.primary_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(self.primary_url(name), autocommit=True) as conn:
            # Creating the tables is not reading them (the gate would see the DDL's text).
            conn.execute("SET pg_stat_statements.track = none")
            conn.execute(reference_schema())  # type: ignore[arg-type]
        self.wait_for_replay()
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.primary_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def wait_for_replay(self) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary_url(), autocommit=True) as conn:
            target = _one(conn, "SELECT pg_current_wal_insert_lsn()::text")
        self._wait(
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,),
            f"the standby did not replay up to the primary's {target}",
        )  # fmt: skip

    def pause_replay(self) -> None:
        with psycopg.connect(self.standby_url(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        self._wait("SELECT pg_get_wal_replay_pause_state() = 'paused'", (),
                   "the standby's replay did not pause")  # fmt: skip

    def resume_replay(self) -> None:
        with psycopg.connect(self.standby_url(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def received_ahead_of_replay(self) -> None:
        """Until the standby has received WAL it has not replayed (replay being paused)."""
        with psycopg.connect(self.primary_url(), autocommit=True) as conn:
            target = _one(conn, "SELECT pg_current_wal_insert_lsn()::text")
        self._wait(
            "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn"
            " AND pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()", (target,),
            "the standby did not receive the primary's WAL",
        )  # fmt: skip

    def set_standby(self, name: str, value: str) -> None:
        """A reloadable setting of the standby's (ALTER SYSTEM there; restore() resets it)."""
        with psycopg.connect(self.standby_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                sql.Identifier(name), sql.Literal(value)))  # fmt: skip
            conn.execute("SELECT pg_reload_conf()")
        self._changed.add(name)

    def restart_standby(self, *, preload: tuple[str, ...] | None = None) -> None:
        self.standby.stop()
        self.standby.start(preload=preload)

    def restore(self) -> None:
        """Streaming again with pg_stat_statements, replay running, caught up."""
        if not self.standby.is_running():
            self.standby.start()
        if self._changed:
            # One by one: RESET ALL would drop primary_conninfo, which pg_basebackup -R wrote
            # to the same postgresql.auto.conf.
            with psycopg.connect(self.standby_url(), autocommit=True) as conn:
                for name in sorted(self._changed):
                    conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
                conn.execute("SELECT pg_reload_conf()")
            self._changed.clear()
        with psycopg.connect(self.standby_url(), autocommit=True) as conn:
            loaded = _one(conn, "SELECT current_setting('shared_preload_libraries')")
            paused = _one(conn, "SELECT pg_get_wal_replay_pause_state()")
        if "pg_stat_statements" not in str(loaded):
            self.restart_standby()
        elif paused != "not paused":
            self.resume_replay()
        self.wait_for_replay()

    def _wait(self, query: str, params: tuple[Any, ...], failure: str) -> None:
        deadline = time.monotonic() + _PATIENCE_SECONDS
        while True:
            with psycopg.connect(self.standby_url(), autocommit=True) as conn:
                if _one(conn, query, params):
                    return
            if time.monotonic() > deadline:
                log = self.standby.log_file.read_text(errors="replace")[-2000:]
                pytest.fail(f"{failure} within {_PATIENCE_SECONDS:.0f} s; its log:\n{log}")
            time.sleep(0.05)


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


@pytest.fixture(scope="session")
def standby_pair() -> Iterator[StandbyPair]:
    """Started once per session (two servers and a base backup are slow); cleaned up after."""
    primary = EmbeddedPostgres()
    standby = EmbeddedPostgres()
    try:
        primary.init()
        primary.start()
        standby.init_standby(primary)
        standby.start()
    except Exception as exc:
        primary.cleanup()
        standby.cleanup()
        pytest.fail(f"cannot start a streaming standby of the embedded PostgreSQL: {exc}")
    pair = StandbyPair(primary, standby)
    try:
        with psycopg.connect(pair.standby_url(), autocommit=True) as conn:
            if not _one(conn, "SELECT pg_is_in_recovery()"):
                pytest.fail("the embedded standby started but is not in recovery")
        yield pair
    finally:
        standby.cleanup()
        primary.cleanup()


@pytest.fixture
def standby_db(standby_pair: StandbyPair) -> Iterator[str]:
    """A fresh reference-schema database on the pair's primary, replayed on the standby; the
    standby is put back to streaming with pg_stat_statements after the test."""
    name = standby_pair.create_database()
    try:
        yield name
    finally:
        standby_pair.restore()
        standby_pair.drop_database(name)
