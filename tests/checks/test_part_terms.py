"""Consistency parts declare their own screen and signature terms; a new part is never missed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from psycopg import sql

from checks import REGISTRY, Mode, Window, check_env, select_checks
from checks.consistency import (
    ConsistencyPart,
    ConsistencyProbe,
    RowFlag,
    Term,
    Terms,
    TermTables,
    partition_aggregates,
    partition_findings,
)
from checks.result import RunFindings
from config import CheckSettings
from monitor.db import connect
from tests.factories import OLD, add_partition, add_run, add_worker, ago, healthy_run
from tests.helpers import settings_for

CONSISTENCY = ("dashboard_mismatch", "missing_worker_runs", "flag_conflict")


class UnfinishedCompletions(ConsistencyPart):
    """Test-only part: worker rows whose status is completed but whose finished_at is NULL.

    Nothing the three built-ins aggregate (terminal counts, flags, partition id hashes)
    depends on finished_at, so their terms cannot see these violations.
    """

    prefix = "uc"
    key_fields = ("run_id", "partition_id")

    def row_flags(self, t: TermTables) -> tuple[RowFlag, ...]:
        return (RowFlag("uc_open", workers=self._open(t)),)

    def aggregates(self) -> list[sql.Composable]:
        return partition_aggregates(self, "uc_open > 0")

    def condition(self) -> sql.Composable:
        return sql.SQL("{} > 0").format(self.col("n"))

    def findings(self, row: Mapping[str, Any]) -> RunFindings | None:
        return partition_findings(row, self.prefix)

    def screen_terms(self, t: TermTables) -> Terms:
        return Terms(
            workers=(Term("uc_open", sql.SQL("count(*) FILTER (WHERE {})").format(self._open(t))),),
            tests=(Term("uc_open", sql.SQL("coalesce(w.uc_open, 0) > 0")),),
        )

    def signature_terms(self, t: TermTables) -> Terms | None:
        return Terms(
            workers=(Term("uc_open", sql.SQL("count(*) FILTER (WHERE {})").format(self._open(t))),),
            tests=(Term("uc_open", sql.SQL("w.uc_open")),),
        )

    @staticmethod
    def _open(t: TermTables) -> sql.Composed:
        return sql.SQL("{} = %(completed_status)s AND {} IS NULL").format(
            t.wr.col("status"), t.wr.col("finished_at")
        )


def builtin_terms(part: ConsistencyPart, t: TermTables, kind: str) -> Terms:
    """The screen or signature terms of the three built-ins together (today's terms)."""
    declared = [
        getattr(entry.cls(name, CheckSettings(), part.env), kind)(t)
        for name, entry in REGISTRY.items()
        if issubclass(entry.cls, ConsistencyPart)
    ]
    return Terms(
        *(tuple(term for d in declared for term in getattr(d, side))
          for side in ("progress", "workers", "tests"))
    )  # fmt: skip


class BlindUnfinishedCompletions(UnfinishedCompletions):
    """The same judgment, screened and signed only by the three built-ins' terms."""

    def screen_terms(self, t: TermTables) -> Terms:
        return builtin_terms(self, t, "screen_terms")

    def signature_terms(self, t: TermTables) -> Terms | None:
        return builtin_terms(self, t, "signature_terms")


class UnsignedUnfinishedCompletions(UnfinishedCompletions):
    """The same part, declaring that it has no signature."""

    def signature_terms(self, t: TermTables) -> Terms | None:
        return None


@pytest.fixture
def settings(monkeypatch, db_url):
    return settings_for(monkeypatch, db_url)


def probe_with(settings, part_class: type[UnfinishedCompletions] | None) -> ConsistencyProbe:
    """The three built-ins (and the given extra part) in one probe, as the catalogue builds it."""
    env = check_env(settings)
    parts: list[ConsistencyPart] = [
        c for c in select_checks(settings, CONSISTENCY) if isinstance(c, ConsistencyPart)
    ]
    if part_class is not None:
        parts.append(part_class("unfinished_completions", CheckSettings(), env))
    return ConsistencyProbe(parts, env, CONSISTENCY)


def evaluate(settings, probe: ConsistencyProbe, window: Window):
    """Findings (run key, violations) per check, and the screen the sweep used."""
    with connect(
        settings.database_url, purpose="database", connect_timeout=settings.connect_timeout
    ) as conn:
        evaluation = probe.evaluate(conn, window)
    found = {n: sorted((f.run_key, f.violations) for f in e.findings)
             for n, e in evaluation.items()}  # fmt: skip
    (screen,) = {e.screen for e in evaluation.values()}
    return found, screen


def full(known: Sequence[str] | None = None) -> Window:
    return Window(Mode.FULL, known=None if known is None else frozenset(known))


def unfinished_run(db, run_id: str, *, at: dt.datetime = OLD) -> None:
    """A run every built-in finds consistent, with one completed worker row not finished."""
    healthy_run(db, run_id, partitions=3, at=at)
    db.execute(
        "UPDATE worker_runs SET finished_at = NULL WHERE run_id = %s AND partition_id = 1",
        (run_id,),
    )


def only(*unfinished: tuple[str, int]) -> dict[str, list[tuple[str, int]]]:
    """The findings when the built-ins find nothing and the new part finds `unfinished`."""
    return {**{name: [] for name in CONSISTENCY}, "unfinished_completions": list(unfinished)}


def test_todays_terms_miss_the_new_parts_violations(settings, db):
    for i in range(3):
        healthy_run(db, f"ok{i}")
    unfinished_run(db, "open")
    blind = probe_with(settings, BlindUnfinishedCompletions)
    # Judged exactly, the run has the violation ...
    assert evaluate(settings, blind, full(known=["open"])) == (only(("open", 1)), "signature")
    # ... but the built-ins' terms never bring it up: not their per-run screen, not their
    # signature, not an incremental sweep that sees the run change.
    assert evaluate(settings, blind, full()) == (only(), "per-run")
    assert evaluate(settings, blind, full(known=[])) == (only(), "signature")
    incremental = Window(Mode.INCREMENTAL, since=ago(hours=2))
    assert evaluate(settings, blind, incremental)[0] == only()


def test_full_sweeps_find_the_violations_through_the_parts_own_terms(settings, db):
    for i in range(3):
        healthy_run(db, f"ok{i}")
    unfinished_run(db, "open")
    probe = probe_with(settings, UnfinishedCompletions)
    cold = only(("open", 1))
    assert evaluate(settings, probe, full()) == (cold, "per-run")
    # Its signature term is not zero, so with nothing known every run is screened ...
    assert evaluate(settings, probe, full(known=[])) == (cold, "per-run")
    # ... and with the run known, the signature proves the others clean.
    assert evaluate(settings, probe, full(known=["open"])) == (cold, "signature")
    # A new violation outside the known runs spoils the signature and is still found.
    unfinished_run(db, "open2")
    assert evaluate(settings, probe, full(known=["open"])) == (
        only(("open", 1), ("open2", 1)), "per-run",
    )  # fmt: skip
    # A fix is seen on the signature path.
    db.execute("UPDATE worker_runs SET finished_at = started_at WHERE run_id = 'open2'")
    assert evaluate(settings, probe, full(known=["open", "open2"])) == (cold, "signature")


def test_an_incremental_sweep_finds_the_violations(settings, db):
    healthy_run(db, "old", at=ago(hours=5))
    unfinished_run(db, "open", at=ago(hours=1))
    probe = probe_with(settings, UnfinishedCompletions)
    found, _ = evaluate(settings, probe, Window(Mode.INCREMENTAL, since=ago(hours=2)))
    assert found == only(("open", 1))


def test_a_part_without_a_signature_forces_the_per_run_screen(settings, db):
    for i in range(3):
        healthy_run(db, f"ok{i}")
    assert evaluate(settings, probe_with(settings, None), full(known=[]))[1] == "signature"
    probe = probe_with(settings, UnsignedUnfinishedCompletions)
    assert not probe.signed
    assert evaluate(settings, probe, full(known=[])) == (only(), "per-run")
    unfinished_run(db, "open")
    assert evaluate(settings, probe, full(known=["open"])) == (only(("open", 1)), "per-run")
    with pytest.raises(ValueError, match="no signature"):
        probe.signature_sql(focused=False)


def test_shared_terms_are_emitted_once(settings):
    probe = probe_with(settings, None)
    signature = probe.signature_sql(focused=False).as_string(None)
    # dashboard_mismatch and missing_worker_runs both declare the hash sums.
    assert signature.count(' AS "f"') == 2  # once over each table
    assert signature.count("coalesce(p.f, 0) - coalesce(w.f, 0)") == 1
    screen = probe.screen_sql().as_string(None)
    assert screen.count(' AS "pc"') == 1
    # The screen of one part reads only what that part declares.
    (alone,) = [ConsistencyProbe([p], p.env) for p in probe.parts if p.name == "flag_conflict"]
    assert ' AS "pc"' not in alone.screen_sql().as_string(None)


def test_one_name_declared_with_two_meanings_is_refused(settings):
    class Clashing(UnfinishedCompletions):
        def screen_terms(self, t: TermTables) -> Terms:
            return Terms(
                progress=(Term("pc", sql.SQL("count(*)")),), tests=super().screen_terms(t).tests
            )

    with pytest.raises(ValueError, match="'pc' differently"):
        probe_with(settings, Clashing).screen_sql()


def test_the_built_ins_still_find_their_own_violations_beside_a_new_part(settings, db):
    healthy_run(db, "ok")
    unfinished_run(db, "open")
    add_run(db, "conflict")
    add_partition(db, "conflict", 0, completed=True, failed=True)
    add_worker(db, "conflict", 0, "completed")
    found, _ = evaluate(settings, probe_with(settings, UnfinishedCompletions), full())
    assert found == {
        "dashboard_mismatch": [("conflict", 1)],
        "missing_worker_runs": [],
        "flag_conflict": [("conflict", 1)],
        "unfinished_completions": [("open", 1)],
    }
