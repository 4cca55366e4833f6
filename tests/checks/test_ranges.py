"""Full sweeps split into ranges of runs: the same result as one statement, with progress."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from psycopg import sql

from checks import Mode, Window, build_probes, select_checks
from checks.consistency import ConsistencyProbe
from checks.ranges import WHOLE, RunRange, plan_ranges
from checks.snapshot import Snapshot, snapshot
from config import ConfigError, load_settings
from monitor.db import connect
from tests.factories import add_partition, add_run, add_worker, ago, healthy_run, seed_race
from tests.helpers import settings_for

SWEPT = (
    "dashboard_mismatch", "missing_worker_runs", "flag_conflict", "stale_partitions",
    "premature_consolidation",
)  # fmt: skip
CONSISTENCY = SWEPT[:3]
ONE_STATEMENT = str(10**9)


def defects_everywhere(db) -> None:
    """Defects in the first and last runs (the open ends), next to clean runs (at whatever
    bounds the ranges get) and in the middle; run ids sort as text."""
    seed_race(db, "a-race")
    for i in range(12):
        healthy_run(db, f"m{i:02d}", partitions=4, failed=[i % 4])
    add_run(db, "m05x-conflict")
    add_partition(db, "m05x-conflict", 0, completed=True, failed=True)
    add_worker(db, "m05x-conflict", 0, "failed")
    add_worker(db, "m05x-conflict", 0, "completed")
    add_run(db, "m08x-stale")
    add_partition(db, "m08x-stale", 0, updated_at=ago(hours=2))
    add_partition(db, "m08x-stale", 1, completed=True, updated_at=ago(hours=2))
    add_worker(db, "m08x-stale", 1, "completed", started_at=ago(hours=2))
    add_run(db, "m09x-premature", status="completed")
    add_partition(db, "m09x-premature", 0, updated_at=ago(hours=2))
    add_worker(db, "0-orphan-first", 1, "completed")  # worker rows of runs nobody registered,
    add_worker(db, "zz-orphan-last", 3, "failed")  # sorting before and after every run
    add_run(db, "zz-missing")
    add_partition(db, "zz-missing", 0, completed=True)  # no worker row
    add_run(db, "m10x-settling")
    add_partition(db, "m10x-settling", 0, completed=True, updated_at=ago(seconds=5))
    db.execute("ANALYZE")


def evaluate(settings, names, window):
    """Every evaluation of the named checks in one full window, and the progress reports."""
    reports: list[tuple[str, int, int]] = []
    window = dataclasses.replace(window, progress=lambda *r: reports.append(r))
    results = {}
    with connect(
        settings.database_url, purpose="database", connect_timeout=settings.connect_timeout
    ) as conn:
        for probe in build_probes(select_checks(settings, names)):
            results.update(probe.evaluate(conn, window))
    return comparable(results), reports


def comparable(results):
    # Each evaluation has its own snapshot time (which ages are measured from); findings come
    # range by range.
    def timeless(finding):
        samples = tuple({k: v for k, v in s.items() if k != "age_seconds"} for s in finding.samples)
        return dataclasses.replace(finding, samples=samples)

    return {
        name: dataclasses.replace(
            e, snapshot_at=None, watermark=None,
            findings=tuple(sorted((timeless(f) for f in e.findings), key=str)),
        )
        for name, e in results.items()
    }  # fmt: skip


def known_runs(results) -> frozenset[str]:
    return frozenset(f.run_key for name in CONSISTENCY for f in results[name].findings)


@pytest.mark.parametrize("chunk", ["1", "3", "9", "25"])
def test_ranges_give_exactly_what_one_statement_gives(monkeypatch, db_url, db, chunk):
    defects_everywhere(db)
    whole = settings_for(monkeypatch, db_url, sweep_chunk_rows=ONE_STATEMENT)
    first, reports = evaluate(whole, SWEPT, Window(Mode.FULL))
    assert {r[1:] for r in reports} <= {(0, 1), (1, 1)}
    found = {name: {f.run_key for f in e.findings} for name, e in first.items()}
    assert found == {
        "dashboard_mismatch": {"0-orphan-first", "a-race", "zz-missing", "zz-orphan-last"},
        "missing_worker_runs": {"a-race", "zz-missing"},
        "flag_conflict": {"m05x-conflict"},
        "stale_partitions": {"m08x-stale", "m09x-premature"},
        "premature_consolidation": {"m09x-premature"},
    }
    assert first["flag_conflict"].unsettled == {"m10x-settling"}
    daily_window = Window(Mode.FULL, known=known_runs(first))
    daily, _ = evaluate(whole, SWEPT, daily_window)
    assert daily["flag_conflict"].screen == "signature"

    ranged = settings_for(monkeypatch, db_url, sweep_chunk_rows=chunk)
    ranged_first, reports = evaluate(ranged, SWEPT, Window(Mode.FULL))
    assert ranged_first == first
    ranged_daily, daily_reports = evaluate(ranged, SWEPT, daily_window)
    assert ranged_daily == daily
    for reported in (reports, daily_reports):
        assert max(total for _, _, total in reported) > 1  # the sweep really was split
        for name in {n for n, _, _ in reported}:
            counts = [(done, total) for n, done, total in reported if n == name]
            dones = [done for done, _ in counts]
            assert dones == sorted(dones)
            assert counts[-1][0] == counts[-1][1]


def test_a_surprise_in_ranges_falls_back_to_the_screen_and_still_agrees(monkeypatch, db_url, db):
    defects_everywhere(db)
    known = frozenset({"a-race"})  # the other defects are a surprise to the signature
    whole = settings_for(monkeypatch, db_url, sweep_chunk_rows=ONE_STATEMENT)
    expected, _ = evaluate(whole, CONSISTENCY, Window(Mode.FULL, known=known))
    assert expected["flag_conflict"].screen == "per-run"
    ranged = settings_for(monkeypatch, db_url, sweep_chunk_rows="4")
    got, reports = evaluate(ranged, CONSISTENCY, Window(Mode.FULL, known=known))
    assert got == expected
    # The signature's ranges, then the screen's: the count goes on, the total grows once.
    totals = sorted({total for _, _, total in reports})
    assert len(totals) == 2
    assert totals[1] == 2 * totals[0]
    dones = [done for _, done, _ in reports]
    assert dones == sorted(dones)
    assert sorted(set(dones)) == list(range(totals[1] + 1))


def test_signature_numbers_of_the_ranges_add_up_to_the_whole(monkeypatch, db_url, db):
    defects_everywhere(db)
    settings = settings_for(monkeypatch, db_url, sweep_chunk_rows="5")
    with consistency_snapshot(settings) as (probe, snap):
        ranges = plan_ranges(snap, probe.rm, (probe.pp, probe.wr), 5)
        assert len(ranges) > 3
        assert ranges[0].lo is None
        assert ranges[-1].hi is None
        assert all(a.hi == b.lo for a, b in itertools.pairwise(ranges))
        params = probe._params(snap.now, None)
        whole = snap.fetch(probe.signature_sql(focused=False), params)[0]
        parts = [
            snap.fetch(probe.signature_sql(focused=False, bounds=r), params | r.params())[0]
            for r in ranges
        ]
    assert any(n != 0 for n in whole)  # the defects move the numbers
    assert tuple(sum(column) for column in zip(*parts, strict=True)) == tuple(whole)


def test_empty_tables_are_one_range_and_clean(monkeypatch, db_url, db):
    db.execute("ANALYZE")
    settings = settings_for(monkeypatch, db_url, sweep_chunk_rows="1")
    results, reports = evaluate(settings, SWEPT, Window(Mode.FULL))
    assert all(e.findings == () for e in results.values())
    assert {r[1:] for r in reports} == {(0, 1), (1, 1)}


def test_unanalysed_tables_are_sized_from_their_pages(monkeypatch, db_url, db):
    for i in range(40):
        healthy_run(db, f"r{i:02d}", partitions=10)
    settings = settings_for(monkeypatch, db_url)
    with consistency_snapshot(settings) as (probe, snap):
        assert plan_ranges(snap, probe.rm, (probe.pp,), 10**9) == [WHOLE]
        ranges = plan_ranges(snap, probe.rm, (probe.pp,), 50)
    assert len(ranges) > 1


def test_a_range_is_a_condition_on_the_run_id():
    assert RunRange().condition(sql_name("run_id")) is None
    text = RunRange(3, 7).where(sql_name("run_id")).as_string(None)
    assert text == ' WHERE "run_id" >= %(range_lo)s AND "run_id" < %(range_hi)s'
    assert RunRange(hi=7).and_(sql_name("run_id")).as_string(None) == ' AND "run_id" < %(range_hi)s'


def sql_name(name):
    return sql.Identifier(name)


@pytest.mark.parametrize("value", ["0", "-5", "many", "1.5"])
def test_the_chunk_size_rejects_bad_values_in_one_line(monkeypatch, value):
    monkeypatch.setenv("DQ_SWEEP_CHUNK_ROWS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    (line,) = str(info.value).splitlines()
    assert line.startswith("sweep_chunk_rows: ")
    assert value not in line.removeprefix("sweep_chunk_rows: ")


@pytest.mark.parametrize("sample_runs", [10**6, 500])
def test_bounds_from_a_sample_still_cover_every_row_once(monkeypatch, db_url, db, sample_runs):
    db.execute(
        "INSERT INTO run_metadata (run_id, started_at, completed_workers, failed_workers, status)"
        " SELECT 'r' || lpad(i::text, 5, '0'), now(), 0, 0, 'running'"
        " FROM generate_series(1, 2000) AS i"
    )
    db.execute(
        "INSERT INTO partition_progress (run_id, partition_id, completed, failed, updated_at)"
        " SELECT run_id, p, false, false, now() FROM run_metadata, generate_series(0, 1) AS p"
    )
    db.execute("ANALYZE")
    settings = settings_for(monkeypatch, db_url)
    with consistency_snapshot(settings) as (probe, snap):
        ranges = plan_ranges(snap, probe.rm, (probe.pp,), 400, sample_runs=sample_runs)
        counts = [snap.fetch(count_sql(r), r.params())[0][0] for r in ranges]
    assert len(ranges) > 3
    assert sum(counts) == 4000
    assert max(counts) < 4000


def count_sql(bounds):
    return sql.SQL("SELECT count(*) FROM partition_progress{}").format(
        bounds.where(sql.Identifier("run_id"))
    )


@contextmanager
def consistency_snapshot(settings) -> Iterator[tuple[ConsistencyProbe, Snapshot]]:
    """The consistency probe these settings build, and a snapshot of the monitored database."""
    (probe,) = build_probes(select_checks(settings, CONSISTENCY))
    assert isinstance(probe, ConsistencyProbe)
    with (
        connect(settings.database_url, purpose="database",
                connect_timeout=settings.connect_timeout) as conn,
        snapshot(conn, settings.statement_timeout) as snap,
    ):  # fmt: skip
        yield probe, snap
