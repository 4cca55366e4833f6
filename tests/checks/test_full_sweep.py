"""Full sweeps: the per-run screen and the signature path that verifies the known runs agree."""

from __future__ import annotations

import random

import pytest

from alerts import SystemClock
from checks import Mode, Window, build_probes, select_checks
from checks.consistency import ConsistencyProbe, array_literal
from monitor.db import connect
from tests.factories import add_partition, add_run, add_worker, ago, healthy_run, seed_race
from tests.helpers import run_checks, settings_for

CONSISTENCY = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict")
CLEAN = {name: [] for name in CONSISTENCY}


@pytest.fixture
def settings(monkeypatch, db_url):
    return settings_for(monkeypatch, db_url)


def probe_for(settings) -> ConsistencyProbe:
    (probe,) = build_probes(select_checks(settings, CONSISTENCY))
    assert isinstance(probe, ConsistencyProbe)
    return probe


def sweep(settings, known=None):
    """One full sweep of the three checks; findings per check, the screen used, unsettled runs."""
    with connect(
        settings.database_url, purpose="database", connect_timeout=settings.connect_timeout
    ) as conn:
        evaluation = probe_for(settings).evaluate(conn, Window(Mode.FULL, known=known))
    findings = {n: sorted((f.run_key, f.violations, f.samples) for f in e.findings)
                for n, e in evaluation.items()}  # fmt: skip
    screens = {e.screen for e in evaluation.values()}
    assert len(screens) == 1
    unsettled = {e.unsettled for e in evaluation.values()}
    assert len(unsettled) == 1
    return findings, screens.pop(), unsettled.pop()


def known_from(findings) -> frozenset[str]:
    return frozenset(key for found in findings.values() for key, _, _ in found)


def defective_database(db) -> None:
    for i in range(20):
        healthy_run(db, f"ok{i}", partitions=5, failed=[i % 5])
    seed_race(db, "race")
    add_run(db, "conflict")
    add_partition(db, "conflict", 0, completed=True, failed=True)
    add_worker(db, "conflict", 0, "failed")
    add_worker(db, "conflict", 0, "completed")  # both rows: the counts agree, the flags do not
    add_run(db, "orphan")
    add_worker(db, "orphan", 9, "completed")  # a worker row without a progress row


def test_known_runs_are_judged_and_the_rest_proven_clean(settings, db):
    defective_database(db)
    cold, screen, _ = sweep(settings)
    assert screen == "per-run"
    assert known_from(cold) == {"race", "conflict", "orphan"}
    assert [k for k, _, _ in cold["flag_conflict"]] == ["conflict"]
    warm, screen, _ = sweep(settings, known=known_from(cold))
    assert screen == "signature"
    assert warm == cold


def test_a_clean_database_needs_no_known_runs(settings, db):
    for i in range(5):
        healthy_run(db, f"ok{i}", failed=[1])
    findings, screen, _ = sweep(settings, known=frozenset())
    assert screen == "signature"
    assert findings == CLEAN


def test_a_defect_outside_the_known_runs_is_still_found(settings, db):
    defective_database(db)
    cold, _, _ = sweep(settings)
    # An edit no timestamp shows: a clean run's worker row changes status.
    db.execute("UPDATE worker_runs SET status = 'failed' WHERE run_id = 'ok3' AND partition_id = 0")
    found, screen, _ = sweep(settings, known=known_from(cold))
    assert screen == "per-run"
    assert [k for k, _, _ in found["dashboard_mismatch"]] == ["ok3", "orphan", "race"]
    assert found == sweep(settings)[0]


def test_each_kind_of_defect_alone_spoils_the_signature(settings, db):
    edits = [
        "UPDATE partition_progress SET failed = true WHERE run_id = 'a' AND partition_id = 0",
        "DELETE FROM worker_runs WHERE run_id = 'a' AND partition_id = 1",
        "UPDATE worker_runs SET partition_id = 7 WHERE run_id = 'a' AND partition_id = 1",
        "UPDATE worker_runs SET status = 'completed' WHERE run_id = 'a' AND partition_id = 2",
        "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
        " VALUES ('a', 0, 'completed', now() - interval '1 hour', now() - interval '1 hour')",
        "UPDATE worker_runs SET run_id = 'b' WHERE run_id = 'a' AND partition_id = 0",
    ]
    for edit in edits:
        db.execute("DELETE FROM worker_runs; DELETE FROM partition_progress;"
                   " DELETE FROM run_metadata")  # fmt: skip
        healthy_run(db, "a", partitions=3, failed=[2])
        healthy_run(db, "b", partitions=3, failed=[2])
        assert sweep(settings, known=frozenset())[1] == "signature", edit
        db.execute(edit)
        found, screen, _ = sweep(settings, known=frozenset())
        assert screen == "per-run", edit
        assert any(found.values()), edit


def test_a_fixed_known_run_is_cleared(settings, db):
    seed_race(db, "race")
    healthy_run(db, "ok")
    cold, _, _ = sweep(settings)
    add_worker(db, "race", 2, "failed")  # the lost worker row comes back
    found, screen, _ = sweep(settings, known=known_from(cold))
    assert screen == "signature"
    assert found == CLEAN


def test_unsettled_runs_are_left_alone_without_spoiling_the_signature(settings, db):
    seed_race(db, "old_race")
    healthy_run(db, "ok")
    # A run in flight: progress says failed, its worker row is not written yet.
    add_run(db, "busy")
    add_partition(db, "busy", 0, failed=True, updated_at=ago(seconds=5))
    cold, screen, unsettled = sweep(settings)
    assert unsettled == {"busy"}
    warm, screen, unsettled = sweep(settings, known=known_from(cold))
    assert (screen, unsettled) == ("signature", {"busy"})
    assert warm == cold
    assert known_from(warm) == {"old_race"}


def test_a_known_key_that_is_not_a_run_id_falls_back_to_the_screen(monkeypatch, db_url, db):
    db.execute(
        "CREATE TABLE jobs (id bigint PRIMARY KEY);"
        "CREATE TABLE parts (job bigint, part text, done boolean, bad boolean,"
        " touched timestamptz, PRIMARY KEY (job, part));"
        "CREATE TABLE attempts (id bigserial PRIMARY KEY, job bigint, part text, state text,"
        " started_at timestamptz, finished_at timestamptz);"
        "INSERT INTO jobs VALUES (1), (22), (333);"
        "INSERT INTO parts VALUES (1, 'a', true, false, now() - interval '1 hour'),"
        " (22, 'b', false, true, now() - interval '1 hour'),"
        " (333, 'c', true, false, now() - interval '1 hour');"
        "INSERT INTO attempts (job, part, state, started_at, finished_at) VALUES"
        " (1, 'a', 'ok', now() - interval '1 hour', now() - interval '1 hour'),"
        " (333, 'c', 'ok', now() - interval '1 hour', now() - interval '1 hour')"
    )
    env = {
        "TABLES__RUN_METADATA__NAME": "jobs", "TABLES__RUN_METADATA__RUN_ID": "id",
        "TABLES__PARTITION_PROGRESS__NAME": "parts", "TABLES__PARTITION_PROGRESS__RUN_ID": "job",
        "TABLES__PARTITION_PROGRESS__PARTITION_ID": "part",
        "TABLES__PARTITION_PROGRESS__COMPLETED": "done",
        "TABLES__PARTITION_PROGRESS__FAILED": "bad",
        "TABLES__PARTITION_PROGRESS__UPDATED_AT": "touched",
        "TABLES__WORKER_RUNS__NAME": "attempts", "TABLES__WORKER_RUNS__RUN_ID": "job",
        "TABLES__WORKER_RUNS__PARTITION_ID": "part", "TABLES__WORKER_RUNS__STATUS": "state",
        "TABLES__WORKER_RUNS__COMPLETED_STATUS": "ok",
        "TABLES__WORKER_RUNS__FAILED_STATUS": "error",
    }  # fmt: skip
    settings = settings_for(monkeypatch, db_url, **env)
    cold, screen, _ = sweep(settings)
    assert screen == "per-run"
    assert known_from(cold) == {"22"}
    # Text keys of bigint run ids go back through the index as bigints.
    assert sweep(settings, known=frozenset({"22"})) == (cold, "signature", frozenset())
    # A key that cannot be a bigint (the run id column changed type since it was stored).
    assert sweep(settings, known=frozenset({"22", "run-7"})) == (cold, "per-run", frozenset())


def test_array_literal_quotes_every_key():
    assert array_literal([]) == "{}"
    assert array_literal(["b", "a"]) == '{"a","b"}'
    assert array_literal(['x"y', "back\\slash", "{,}", "NULL"]) == (
        '{"NULL","back\\\\slash","x\\"y","{,}"}'
    )


def test_array_literal_round_trips_through_the_server(db):
    keys = ['x"y', "back\\slash", "{,}", "NULL", "with space", "ünï"]
    (value,) = db.execute("SELECT %s::text[]", (array_literal(keys),)).fetchone()
    assert sorted(value) == sorted(keys)


def test_randomised_history_signature_path_equals_the_per_run_screen(settings, db):
    rng = random.Random(11292026)
    runs = [f"r{i}" for i in range(15)]
    for run in runs:
        healthy_run(db, run, partitions=4, failed=[rng.randrange(4)])
    found, _, _ = sweep(settings)
    for step in range(8):
        for _ in range(3):
            run, pid = rng.choice(runs), rng.randrange(5)
            edit = rng.choice([
                "UPDATE partition_progress SET completed = NOT completed"
                " WHERE run_id = %(r)s AND partition_id = %(p)s",
                "UPDATE partition_progress SET failed = NOT failed"
                " WHERE run_id = %(r)s AND partition_id = %(p)s",
                "DELETE FROM worker_runs WHERE run_id = %(r)s AND partition_id = %(p)s",
                "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
                " VALUES (%(r)s, %(p)s, 'completed', now() - interval '1 hour',"
                " now() - interval '1 hour')",
                "UPDATE worker_runs SET status = CASE status WHEN 'failed' THEN 'completed'"
                " ELSE 'failed' END WHERE run_id = %(r)s AND partition_id = %(p)s",
            ])  # fmt: skip
            db.execute(edit, {"r": run, "p": pid})
        cold, cold_screen, _ = sweep(settings)
        warm, warm_screen, _ = sweep(settings, known=known_from(found))
        assert cold_screen == "per-run"
        assert warm == cold, f"step {step}"
        if not known_from(cold) <= known_from(found):  # a defect in a run not known before
            assert warm_screen == "per-run"
        found = cold
        # With what is known now, the signature path must succeed.
        assert sweep(settings, known=known_from(found)) == (found, "signature", frozenset())


def test_the_service_path_passes_the_known_runs(settings, db):
    from monitor.app import App

    seed_race(db, "race")
    healthy_run(db, "ok")
    add_run(db, "slow")
    add_partition(db, "slow", 0, updated_at=ago(hours=2))  # stale, consistent
    app = App.open(settings, clock=SystemClock())
    try:
        assert app.store.known_runs(CONSISTENCY) is None  # nothing has run yet
        run_checks(settings, *CONSISTENCY, "stale_partitions")
        assert app.store.known_runs(["stale_partitions"]) == {"slow"}
        assert app.store.known_runs(CONSISTENCY) == {"race"}
        window = app.pipeline._full_window(probe_for(settings), None)
        assert window.known == {"race"}
        # A probe with one part still learns from the other parts' findings.
        (alone,) = build_probes(select_checks(settings, ["flag_conflict"]))
        assert set(alone.related) == set(CONSISTENCY)
        assert app.pipeline._full_window(alone, None).known == {"race"}
    finally:
        app.close()
    full = run_checks(settings, *CONSISTENCY, full=True)
    assert {n: r.violations for n, r in full.items()} == {
        "dashboard_mismatch": 1, "missing_worker_runs": 1, "flag_conflict": 0,
    }  # fmt: skip


def test_many_known_runs_are_screened_rather_than_read_through_the_index(monkeypatch, settings, db):
    for i in range(8):
        healthy_run(db, f"ok{i}")
    seed_race(db, "race1")
    seed_race(db, "race2")
    cold, _, _ = sweep(settings)
    monkeypatch.setattr(ConsistencyProbe, "few_known", 1)
    db.execute("ANALYZE run_metadata")  # the planner's count of runs: 10
    monkeypatch.setattr(ConsistencyProbe, "known_share", 0.15)  # 2 of 10 runs are more
    assert sweep(settings, known=known_from(cold)) == (cold, "per-run", frozenset())
    monkeypatch.setattr(ConsistencyProbe, "known_share", 0.25)  # 2 of 10 runs are fewer
    assert sweep(settings, known=known_from(cold)) == (cold, "signature", frozenset())
