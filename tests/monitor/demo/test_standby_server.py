"""The test suite's streaming standby: it replays the primary and can pause."""

from __future__ import annotations

import psycopg
import pytest

from tests.plugins.standby import StandbyPair


def test_the_standby_replays_the_primary_and_refuses_writes(
    standby_pair: StandbyPair, standby_db: str
) -> None:
    with psycopg.connect(standby_pair.primary_url(standby_db), autocommit=True) as conn:
        conn.execute("INSERT INTO run_metadata (run_id, status) VALUES ('r1', 'running')")
    standby_pair.wait_for_replay()
    with psycopg.connect(standby_pair.standby_url(standby_db), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert conn.execute("SELECT run_id FROM run_metadata").fetchall() == [("r1",)]
        loaded = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        assert loaded is not None
        assert "pg_stat_statements" in loaded[0]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO run_metadata (run_id, status) VALUES ('r2', 'running')")
