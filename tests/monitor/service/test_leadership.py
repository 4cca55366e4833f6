"""Leadership per database among replicas: one leader each, a fair share each, takeover."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from alerts import SystemClock
from config import ConfigError, Settings
from monitor.service.leadership import Leadership, Leaderships, leader_key, members_key
from tests.helpers import settings_for

NAMES = [f"db{i}" for i in range(6)]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Settings:
    return settings_for(monkeypatch, db_url)


@pytest.fixture
def make(settings: Settings) -> Iterator[object]:
    made: list[Leaderships] = []

    def replica(
        tag: str, names: list[str] = NAMES, busy: Callable[[str], bool] | None = None
    ) -> Leaderships:
        made.append(Leaderships(settings, SystemClock(), names, replica=tag, busy=busy))
        return made[-1]

    yield replica
    for leaderships in made:
        leaderships.release()


def server_holders(db: psycopg.Connection, settings: Settings) -> dict[str, list[int]]:
    """Each database's lock holders as pg_locks shows them (granted or waiting, any mode)."""
    holders: dict[str, list[int]] = {}
    for name in NAMES:
        row = db.execute(
            "SELECT hashtextextended(%s, 0)", (leader_key(settings.state_schema, name),)
        ).fetchone()
        assert row is not None
        key = row[0] & 0xFFFFFFFFFFFFFFFF
        pids = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
            " AND classid = %s::int8::oid AND objid = %s::int8::oid AND mode = 'ExclusiveLock'"
            " AND granted AND database = (SELECT oid FROM pg_database"
            "  WHERE datname = current_database())",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
        holders[name] = [pid for (pid,) in pids]
    return holders


def assert_one_leader_at_most(
    db: psycopg.Connection, settings: Settings, live: list[Leaderships]
) -> dict[str, list[int]]:
    """What every replica claims is backed by its own session's lock on the server, no two
    claim the same database, and no database has two holders."""
    holders = server_holders(db, settings)
    claimed: dict[str, str] = {}
    for replica in live:
        pids = replica.backend_pids()
        for name in replica.led():
            assert name not in claimed, f"{name} led by {claimed[name]} and {replica.replica}"
            claimed[name] = replica.replica
            assert holders[name] == [pids[name]], (name, holders[name], pids)
    for name, pids_of_name in holders.items():
        assert len(pids_of_name) <= 1, (name, pids_of_name)
        assert bool(pids_of_name) == (name in claimed), (name, pids_of_name, claimed)
    return holders


def poll_round(db: psycopg.Connection, settings: Settings, live: list[Leaderships]) -> None:
    for replica in live:
        replica.poll()
        assert_one_leader_at_most(db, settings, live)


def shares(live: list[Leaderships]) -> list[int]:
    return [len(replica.led()) for replica in live]


def test_three_replicas_share_six_databases_and_survive_a_crash(make, db, settings):
    a, b, c = make("a"), make("b"), make("c")
    live = [a, b, c]
    poll_round(db, settings, live)
    # The first replica saw no other member yet and took everything; nobody is left unled.
    assert shares(live) == [6, 0, 0]
    poll_round(db, settings, live)
    assert shares(live) == [2, 2, 2]
    for _ in range(3):  # settled: nothing moves any more
        before = [replica.led() for replica in live]
        poll_round(db, settings, live)
        assert [replica.led() for replica in live] == before
    assert all(len(pids) == 1 for pids in server_holders(db, settings).values())

    # b crashes, as the server sees it: every backend of its sessions ends.
    for pid in b.backend_pids().values():
        row = db.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()
        assert row == (True,)
    live = [a, c]
    poll_round(db, settings, live)
    assert shares(live) == [3, 3]
    assert all(len(pids) == 1 for pids in server_holders(db, settings).values())

    # b was only cut off, not dead: its next poll steps down and rejoins, and it gets its
    # share back from the others' surplus.
    assert len(b.led()) == 2  # its own view is stale until it polls
    live = [a, b, c]
    b.poll()
    assert b.led() == frozenset()
    assert_one_leader_at_most(db, settings, live)
    for _ in range(2):
        poll_round(db, settings, live)
    assert sorted(shares(live)) == [2, 2, 2]
    assert all(len(pids) == 1 for pids in server_holders(db, settings).values())


def test_a_replica_joining_later_gets_its_share(make, db, settings):
    a, b = make("a"), make("b")
    for _ in range(3):
        poll_round(db, settings, [a, b])
    assert shares([a, b]) == [3, 3]
    c = make("c")
    live = [c, a, b]
    poll_round(db, settings, live)  # c joins; a and b each hand one over
    assert shares(live) == [0, 2, 2]
    assert sum(len(p) for p in server_holders(db, settings).values()) == 4
    poll_round(db, settings, live)
    assert shares(live) == [2, 2, 2]
    assert all(len(pids) == 1 for pids in server_holders(db, settings).values())


def test_a_lost_session_costs_exactly_its_database(make, db, settings):
    a, b, c = make("a"), make("b"), make("c")
    live = [a, b, c]
    for _ in range(2):
        poll_round(db, settings, live)
    assert shares(live) == [2, 2, 2]
    lost = sorted(a.led())[0]
    kept = a.led() - {lost}
    old_pid = a.backend_pids()[lost]
    db.execute("SELECT pg_terminate_backend(%s, 10000)", (old_pid,))
    b.poll()  # at its share, and a first look at the free database: b leaves it alone
    holders = server_holders(db, settings)  # a's own view is stale until it polls
    assert holders[lost] == []
    assert all(len(holders[name]) == 1 for name in NAMES if name != lost), holders
    assert lost not in b.led()
    a.poll()  # a steps down at once, and being under its share takes it again
    assert_one_leader_at_most(db, settings, live)
    assert a.led() == kept | {lost}
    assert a.backend_pids()[lost] != old_pid


def test_a_database_whose_checks_run_is_not_handed_over(make, db, settings):
    running: set[str] = set(NAMES)
    lone = make("lone", busy=lambda name: name in running)
    lone.poll()
    assert lone.led() == frozenset(NAMES)
    other = make("b")
    for _ in range(2):
        poll_round(db, settings, [other, lone])
    assert lone.led() == frozenset(NAMES)  # every database busy: nothing moves
    running.clear()
    poll_round(db, settings, [lone, other])
    assert shares([lone, other]) == [3, 3]


def test_a_database_nobody_takes_is_led_over_share_without_flapping(make, db, settings):
    # A member that leads none of these databases (another configuration) still counts, so
    # the share is 3 of 6; the other three are adopted at the second look and stay.
    bystander = make("x", names=[])
    full = make("a")
    poll_round(db, settings, [bystander, full])
    assert len(full.led()) == 3
    poll_round(db, settings, [bystander, full])
    assert full.led() == frozenset(NAMES)
    for _ in range(3):
        poll_round(db, settings, [bystander, full])
        assert full.led() == frozenset(NAMES)


def test_release_frees_every_lock_and_another_replica_takes_them(make, db, settings):
    a, b = make("a"), make("b")
    for _ in range(2):
        poll_round(db, settings, [a, b])
    assert shares([a, b]) == [3, 3]
    a.release()
    assert a.led() == frozenset()
    assert not a.leads(NAMES[0])
    assert a.poll() == frozenset()  # released for good
    # The server frees a closed session's locks once its backend has ended.
    deadline = time.monotonic() + 10
    while len(b.poll()) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.led() == frozenset(NAMES)
    assert_one_leader_at_most(db, settings, [b])


def test_every_replica_is_a_member_and_lock_sessions_carry_server_keepalives(make, db, settings):
    a, b = make("a"), make("b")
    poll_round(db, settings, [a, b])
    row = db.execute("SELECT hashtextextended(%s, 0)", (members_key(settings.state_schema),))
    key = row.fetchone()[0] & 0xFFFFFFFFFFFFFFFF  # type: ignore[index]
    members = db.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
        " AND mode = 'ShareLock' AND classid = %s::int8::oid AND objid = %s::int8::oid",
        (key >> 32, key & 0xFFFFFFFF),
    ).fetchall()
    assert sorted(pid for (pid,) in members) == sorted([a.backend_pids()[""],
                                                        b.backend_pids()[""]])  # fmt: skip
    # A vanished replica host is noticed by the server itself within 10 s + 3 * 5 s.
    session = a._held[sorted(a.led())[0]].conn
    rows = session.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN ('tcp_keepalives_idle',"
        " 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')"
    ).fetchall()
    assert dict(rows) == {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                          "tcp_keepalives_count": "3", "tcp_user_timeout": "10000"}  # fmt: skip


def test_the_single_database_leadership_keeps_its_lock_key(settings, db):
    one = Leadership(settings, SystemClock())
    try:
        assert one.poll()
        assert one.is_leader
        # A replica of the previous release (one lock, this key) cannot lead at the same time.
        row = db.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
            (f"dq-monitor-leader:{settings.state_schema}",),
        ).fetchone()
        assert row == (False,)
    finally:
        one.release()
    assert not one.is_leader


def test_a_lock_held_by_a_previous_release_is_respected(make, db, settings):
    # A replica of the previous release holds the single-database key and is no member.
    key = f"dq-monitor-leader:{settings.state_schema}"
    row = db.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
    assert row == (True,)
    new = make("a", names=["default", "orders"])
    for _ in range(3):
        assert new.poll() == frozenset({"orders"})
    db.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
    assert new.poll() == frozenset({"default", "orders"})


def test_bad_input_is_one_clear_line(monkeypatch, settings):
    with pytest.raises(ConfigError, match=r"^leadership: database names repeat: a$"):
        Leaderships(settings, SystemClock(), ["a", "b", "a"])
    monkeypatch.delenv("DQ_DATABASE_URL")
    bare = Settings()
    with pytest.raises(ConfigError, match=r"^no state database: set DQ_STATE_DATABASE_URL"):
        Leaderships(bare, SystemClock(), ["a"])


def test_the_documented_query_shows_who_holds_what(make, db, settings):
    readme = (Path(__file__).resolve().parents[3] / "docs" / "operations.md").read_text()
    section = readme.split("**Many databases over many replicas.**", 1)[1]
    query = section.split("Who holds what:", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    assert settings.state_schema == "dq_monitor"  # the names the documented example uses
    a = make("a", names=["default", "orders"])
    a.poll()
    pids = a.backend_pids()
    rows = db.execute(query).fetchall()
    assert [(key, pid, mode) for key, pid, mode, _addr, _start in rows] == [
        ("dq-monitor-leader:dq_monitor", pids["default"], "ExclusiveLock"),
        ("dq-monitor-leader:dq_monitor:orders", pids["orders"], "ExclusiveLock"),
        ("dq-monitor-members:dq_monitor", pids[""], "ShareLock"),
    ]


def test_a_job_starting_while_its_database_is_handed_over_keeps_it_led(make, db, settings):
    """A job that saw leads() just before a hand-over withdrew it: the hand-over, asking
    `busy` again, finds it running and keeps the lock, so no two replicas run it at once."""
    running: set[str] = set()

    def busy(name: str) -> bool:
        was = name in running
        if lone.leads(name):  # a job that asked leads() a moment ago starts right now
            running.add(name)
        return was

    lone = make("lone", busy=busy)
    lone.poll()
    assert lone.led() == frozenset(NAMES)
    other = make("b")
    for _ in range(2):
        poll_round(db, settings, [other, lone])
    assert running == set(NAMES)
    assert lone.led() == frozenset(NAMES)  # every job started before the lock could go
    assert other.led() == frozenset()
    assert all(len(pids) == 1 for pids in server_holders(db, settings).values())
