"""Retention: what is old by the database's clock goes, in bounded batches; what is needed stays."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr

from alerts import SystemClock
from monitor.db import ConnectionSource
from monitor.store import PruneResult
from monitor.store import schema as store_schema
from monitor.store.state_store import StateStore

KEEP = timedelta(days=90)
EVIDENCE = timedelta(days=9)


@pytest.fixture
def store(db_url):
    source = ConnectionSource(
        SecretStr(db_url), purpose="state store", connect_timeout=timedelta(seconds=5)
    )
    state = StateStore(source, "dq_monitor", 20, SystemClock())
    state.upgrade()
    yield state
    source.close()


def add_runs(db: psycopg.Connection, check: str, count: int, days_ago: float, *,
             mode: str = "incremental", status: str = "ok") -> None:  # fmt: skip
    """`count` runs of `check`, a minute apart, the last `days_ago` before the database's now."""
    db.execute(
        "INSERT INTO dq_monitor.check_runs (check_name, started_at, finished_at, mode, status,"
        " severity, fingerprint) SELECT %(c)s, t - interval '1 second', t, %(m)s, %(s)s,"
        " 'warning', 'f' FROM generate_series(%(n)s - 1, 0, -1) AS g,"
        " LATERAL (SELECT now() - make_interval(days => %(d)s) - make_interval(mins => g)) AS x(t)",
        {"c": check, "n": count, "d": days_ago, "m": mode, "s": status},
    )
    db.execute(
        "INSERT INTO dq_monitor.check_stats (check_name, severity) VALUES (%s, 'warning')"
        " ON CONFLICT DO NOTHING",
        (check,),
    )


def add_message(db: psycopg.Connection, key: str, status: str, days_ago: float) -> None:
    db.execute(
        "INSERT INTO dq_monitor.alert_outbox (idempotency_key, fingerprint, check_name, route,"
        " kind, payload, status, created_at, next_attempt_at, sent_at)"
        " SELECT %(k)s, 'fp-' || %(k)s, 'a', 'ops', 'firing', '{}', %(s)s, t, t,"
        " CASE WHEN %(s)s = 'sent' THEN t END"
        " FROM (SELECT now() - make_interval(days => %(d)s)) AS x(t)",
        {"k": key, "s": status, "d": days_ago},
    )


def count(db: psycopg.Connection, table: str, where: str = "true") -> int:
    return db.execute(f"SELECT count(*) FROM dq_monitor.{table} WHERE {where}").fetchone()[0]


def test_old_rows_are_deleted_and_newer_ones_kept(store, db):
    add_runs(db, "a", 120, days_ago=100)
    add_runs(db, "a", 30, days_ago=1)
    for key, status, days in [("old-sent", "sent", 100), ("old-dead", "dead", 95),
                              ("old-pending", "pending", 200), ("new-sent", "sent", 2)]:
        add_message(db, key, status, days)  # fmt: skip
    db.execute(
        "INSERT INTO dq_monitor.silences (check_name, starts_at, ends_at, created_by, reason)"
        " VALUES ('a', now() - interval '100 days', now() - interval '99 days', 'me', 'old'),"
        " ('a', now() - interval '1 day', now() + interval '1 day', 'me', 'current')"
    )
    db.execute(
        "INSERT INTO dq_monitor.pgss_samples (sampled_at, available)"
        " SELECT now() - make_interval(days => d), true FROM unnest('{120,110,100,1}'::int[]) d"
    )
    result = store.prune(KEEP, EVIDENCE, batch_size=50)
    assert count(db, "check_runs", "finished_at < now() - interval '90 days'") == 0
    assert count(db, "check_runs") == 30
    remaining = {r[0] for r in db.execute("SELECT idempotency_key FROM dq_monitor.alert_outbox")}
    assert remaining == {"old-pending", "new-sent"}
    assert [r[0] for r in db.execute("SELECT reason FROM dq_monitor.silences")] == ["current"]
    # The newest sample before the cutoff stays: a window starting after it starts from it.
    days = db.execute(
        "SELECT round(extract(epoch FROM now() - sampled_at) / 86400) FROM dq_monitor.pgss_samples"
        " ORDER BY sampled_at"
    ).fetchall()
    assert [int(d[0]) for d in days] == [100, 1]
    assert result.deleted == {"check_runs": 120, "alert_outbox": 2, "silences": 1,
                              "pgss_samples": 2}  # fmt: skip
    assert result.cutoff is not None
    assert result.started_at is not None
    assert result.started_at - result.cutoff == KEEP
    assert result.summary().startswith(f"pruned 125 rows older than {result.cutoff:%Y-%m-%d}")


def test_each_server_keeps_its_newest_sample_before_the_cutoff(store, db):
    db.execute(
        "INSERT INTO dq_monitor.pgss_samples (server, sampled_at, available)"
        " SELECT s, now() - make_interval(days => d), true"
        " FROM unnest('{primary,primary,primary,10.0.0.2:5432,10.0.0.2:5432}'::text[],"
        "             '{120,110,1,130,125}'::int[]) AS x(s, d)"
    )
    result = store.prune(KEEP, EVIDENCE, batch_size=1)
    kept = db.execute(
        "SELECT server, round(extract(epoch FROM now() - sampled_at) / 86400)::int"
        " FROM dq_monitor.pgss_samples ORDER BY 1, 2"
    ).fetchall()
    # The standby's only samples are old: its newest still starts a window after the cutoff.
    assert kept == [("10.0.0.2:5432", 125), ("primary", 1), ("primary", 110)]
    assert result.deleted["pgss_samples"] == 2


def test_pending_messages_are_never_deleted_however_old(store, db):
    for i in range(5):
        add_message(db, f"p{i}", "pending", 400 + i)
    assert store.prune(KEEP, EVIDENCE, batch_size=100).deleted["alert_outbox"] == 0
    assert count(db, "alert_outbox", "status = 'pending'") == 5


def test_batches_are_bounded(store, db):
    add_runs(db, "a", 230, days_ago=120)
    add_runs(db, "a", 3, days_ago=0)
    steps: list[tuple[str, int]] = []
    result = store.prune(KEEP, EVIDENCE, batch_size=40, progress=lambda t, n: steps.append((t, n)))
    deleted = [n for table, n in steps if table == "check_runs"]
    sizes = [b - a for a, b in zip([0, *deleted], deleted, strict=False)]
    assert len(sizes) == math.ceil(230 / 40)
    assert max(sizes) == 40
    assert sum(sizes) == 230 == result.deleted["check_runs"]
    assert result.batches == len(sizes)


def test_each_batch_commits_on_its_own(store, db, db_url):
    add_runs(db, "a", 100, days_ago=120)
    add_runs(db, "a", 1, days_ago=0)
    seen: list[int] = []

    def look(table: str, deleted: int) -> None:
        # Another session sees each batch's deletions as soon as the batch returns.
        with psycopg.connect(db_url, autocommit=True) as other:
            seen.append(count(other, "check_runs"))

    store.prune(KEEP, EVIDENCE, batch_size=30, progress=look)
    assert seen == [71, 41, 11, 1]


def test_a_quiet_checks_last_success_and_last_full_sweep_stay(store, db):
    add_runs(db, "quiet", 5, days_ago=300, mode="full")
    add_runs(db, "quiet", 5, days_ago=250)
    add_runs(db, "quiet", 2, days_ago=200, status="error")
    store.prune(KEEP, EVIDENCE, batch_size=3)
    kept = db.execute(
        "SELECT mode, status, round(extract(epoch FROM now() - finished_at) / 86400)"
        " FROM dq_monitor.check_runs ORDER BY id"
    ).fetchall()
    assert [(m, s, int(d)) for m, s, d in kept] == [("full", "ok", 300), ("incremental", "ok", 250)]


def test_the_runs_before_an_applied_migration_stay_as_its_evidence(store, db):
    add_runs(db, "a", 60, days_ago=150)  # long before the migration
    add_runs(db, "a", 60, days_ago=125)  # within its gate window
    add_runs(db, "a", 1, days_ago=0)
    db.execute(
        "INSERT INTO dq_monitor.migration_audit (action, status, operator, database_user,"
        " started_at, sql_checksum, sql_text)"
        " VALUES ('apply', 'applied', 'me', 'me', now() - interval '120 days', 'x', 'x'),"
        " ('apply', 'failed', 'me', 'me', now() - interval '145 days', 'x', 'x')"
    )
    assert store.prune(KEEP, EVIDENCE, batch_size=25).deleted["check_runs"] == 60
    assert count(db, "check_runs", "finished_at < now() - interval '140 days'") == 0
    assert count(db, "check_runs", "finished_at < now() - interval '100 days'") == 60
    assert count(db, "migration_audit") == 2


def test_a_second_prune_at_the_same_time_is_skipped(store, db, db_url):
    add_runs(db, "a", 10, days_ago=100)
    add_runs(db, "a", 1, days_ago=0)
    with psycopg.connect(db_url, autocommit=True) as other:
        key = "hashtextextended('dq-monitor-prune:dq_monitor', 0)"
        other.execute(f"SELECT pg_advisory_lock({key})")
        result = store.prune(KEEP, EVIDENCE, batch_size=100)
        # Unlocked here, not by closing: a closed session's locks go when its backend exits,
        # which the server may do after the next prune has already looked.
        other.execute(f"SELECT pg_advisory_unlock({key})")
    assert result.skipped
    assert result.summary() == "prune skipped: another prune of this state store is running"
    assert count(db, "check_runs") == 11
    assert store.prune(KEEP, EVIDENCE, batch_size=100).deleted["check_runs"] == 10


def test_each_prune_is_published_with_running_totals(store, db):
    add_runs(db, "a", 10, days_ago=100)
    store.prune(KEEP, EVIDENCE, batch_size=100)
    add_runs(db, "a", 4, days_ago=100)
    add_runs(db, "a", 1, days_ago=0)
    store.prune(KEEP, EVIDENCE, batch_size=100)
    published = store.stats().service["retention"]
    # The first prune kept the newest run (the last success, then 100 days old) too.
    assert published["deleted"]["check_runs"] == 5
    assert published["totals"]["check_runs"] == 14
    assert published["batches"] == 1
    assert published["at"] is not None


def test_upgrade_from_7_to_8_keeps_an_existing_store(store, db):
    db.execute("DROP SCHEMA dq_monitor CASCADE")
    store_schema.upgrade(db, "dq_monitor", to=7)
    db.execute(
        "INSERT INTO dq_monitor.check_runs (check_name, started_at, finished_at, mode, status,"
        " severity, fingerprint) VALUES ('a', now(), now(), 'full', 'ok', 'warning', 'f')"
    )
    assert store.upgrade() == 2  # 8, then 9 (samples per server)
    indexes = {r[0] for r in db.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'dq_monitor'"
        " AND tablename = 'check_runs'")}  # fmt: skip
    assert {"check_runs_check_finished_idx", "check_runs_full_sweeps_idx"} <= indexes
    assert count(db, "check_runs") == 1
    version = db.execute("SELECT max(version) FROM dq_monitor.schema_version").fetchone()[0]
    assert version == 9


def test_upgrade_to_9_keeps_the_pgss_samples_as_the_primarys(store, db):
    db.execute("DROP SCHEMA dq_monitor CASCADE")
    store_schema.upgrade(db, "dq_monitor", to=8)
    db.execute("INSERT INTO dq_monitor.pgss_samples (sampled_at, available, statements)"
               " VALUES (now() - interval '1 day', true, 1)")  # fmt: skip
    db.execute("INSERT INTO dq_monitor.pgss_statements (dbid, userid, queryid, toplevel, calls)"
               " VALUES (1, 10, 42, true, 7)")  # fmt: skip
    assert store.upgrade() == 1
    assert db.execute("SELECT server FROM dq_monitor.pgss_samples").fetchall() == [("primary",)]
    assert db.execute("SELECT server, calls FROM dq_monitor.pgss_statements").fetchall() == [
        ("primary", 7)
    ]
    # A standby's sample at the same instant is a row of its own.
    db.execute("INSERT INTO dq_monitor.pgss_samples (server, sampled_at, available)"
               " SELECT '127.0.0.1:5433', sampled_at, false"
               " FROM dq_monitor.pgss_samples")  # fmt: skip
    assert count(db, "pgss_samples") == 2


@pytest.mark.parametrize(
    ("deleted", "batches", "words"),
    [
        ({}, 0, "pruned 0 rows older than 2026-11-01 00:00 UTC (nothing to delete) in 0 "
         "batches"),
        ({"check_runs": 1}, 1, "pruned 1 row older than 2026-11-01 00:00 UTC (1 check_runs) in "
         "1 batch"),
        ({"check_runs": 1, "alert_outbox": 1204}, 2,
         "pruned 1,205 rows older than 2026-11-01 00:00 UTC (1 check_runs, 1,204 alert_outbox) "
         "in 2 batches"),
    ],
)  # fmt: skip
def test_the_summary_counts_rows_and_batches(deleted, batches, words):
    at = datetime(2026, 11, 1, tzinfo=UTC)
    result = PruneResult(at, at, deleted=deleted, batches=batches, seconds=0.5)
    assert result.summary() == f"{words}, 0.5s"
