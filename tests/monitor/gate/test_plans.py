"""Named migration plans end to end on a real PostgreSQL: `gate [PLAN]`, `migrate PLAN`.

partition_flags_exclusive: dry run, apply (NOT VALID, then VALIDATE), rollback, refusal while
blocked, a conflicting row making VALIDATE fail with nothing left, a held lock; the plans'
names in the gate's reports, exit codes and audit rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers import run_cli

PLAN = "partition_flags_exclusive"
CONSTRAINT = "partition_progress_flags_exclusive"
ADD = (f'ALTER TABLE "public"."partition_progress" ADD CONSTRAINT "{CONSTRAINT}" '
       'CHECK (NOT ("completed" AND "failed")) NOT VALID;')  # fmt: skip
VALIDATE = f'ALTER TABLE "public"."partition_progress" VALIDATE CONSTRAINT "{CONSTRAINT}";'
AUDIT = "dq_monitor.migration_audit"


def constraint(db: psycopg.Connection) -> str:
    """absent, not_valid or valid."""
    row = db.execute(
        "SELECT convalidated FROM pg_constraint WHERE conname = %s"
        " AND conrelid = 'partition_progress'::regclass",
        (CONSTRAINT,),
    ).fetchone()
    return "absent" if row is None else ("valid" if row[0] else "not_valid")


def audit_rows(db: psycopg.Connection) -> list[dict[str, Any]]:
    cursor = db.execute(
        f"SELECT plan, action, status, operator, gate_evidence_hash, sql_checksum, sql_text,"
        f" error FROM {AUDIT} ORDER BY id"
    )
    names = [d.name for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dq-monitor: error: "), err
    return lines[0]


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, db_url: str, db: psycopg.Connection) -> None:
    """20 runs of 5 partitions, each partition completed or failed (never both)."""
    for key, value in {"DQ_DATABASE_URL": db_url, "DQ_GATE__REQUIRED_CLEAN_PERIOD": "0s",
                       "DQ_GATE__ACCEPT_WEAKER_SETTINGS": "true"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    db.execute("SET pg_stat_statements.track = none")
    db.execute("CREATE EXTENSION pg_stat_statements")
    # An hour old: settled, so the checks judge every run.
    db.execute(
        "INSERT INTO run_metadata (run_id, started_at, status, completed_workers, failed_workers)"
        " SELECT 'r' || g, now() - interval '2h', 'completed', 4, 1 FROM generate_series(1, 20) g"
    )
    db.execute(
        "INSERT INTO partition_progress (run_id, partition_id, completed, failed, updated_at)"
        " SELECT 'r' || g, p, p <> 5, p = 5, now() - interval '1h' FROM generate_series(1, 20) g,"
        " generate_series(1, 5) p"
    )
    db.execute(
        "INSERT INTO worker_runs (run_id, partition_id, status, started_at, finished_at)"
        " SELECT run_id, partition_id, CASE WHEN failed THEN 'failed' ELSE 'completed' END,"
        " updated_at - interval '1m', updated_at FROM partition_progress"
    )


@pytest.fixture
def open_gate(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "check", "--full")
    assert code == 0, out + err
    code, out, err = run_cli(capsys, "gate", PLAN)
    assert code == 0, out + err


@pytest.fixture
def partition_lock(db_url: str) -> Iterator[psycopg.Connection]:
    """Another session holding ACCESS SHARE on partition_progress (a long report query)."""
    with psycopg.connect(db_url, autocommit=True) as other, other.transaction():
        other.execute("LOCK TABLE partition_progress IN ACCESS SHARE MODE")
        yield other


# --- gate ------------------------------------------------------------------------------------


def test_gate_names_one_plan_and_reads_only_its_evidence(open_gate, capsys):
    code, out, _ = run_cli(capsys, "gate", PLAN, "--format", "json")
    report = json.loads(out)
    assert (code, report["plan"], report["decision"]) == (0, PLAN, "open")
    assert [c["check"] for c in report["checks"]] == ["flag_conflict"]
    assert report["settings"]["checks"] == ["flag_conflict"]
    assert list(report["evidence"]) == ["constraint"]
    assert report["evidence"]["constraint"]["status"] == "absent"
    code, out, _ = run_cli(capsys, "gate", PLAN)
    assert "gate: OPEN: the constraint may be added" in out
    assert f"plan: {PLAN} (" in out
    code, out, _ = run_cli(capsys, "gate", PLAN, "--format", "markdown")
    assert "\n## dq-monitor gate: add CHECK (NOT (completed AND failed))" in out


def test_gate_without_a_plan_reports_every_plan_and_exits_with_the_worst(seeded, db, capsys):
    assert run_cli(capsys, "check", "--full")[0] == 0
    # A view on a counter blocks migration 005 only; the constraint plan stays open.
    db.execute("CREATE VIEW failures AS SELECT run_id, failed_workers FROM run_metadata")
    code, out, _ = run_cli(capsys, "gate", "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert (report["plan"], report["decision"]) == ("drop_counter_columns", "blocked")
    assert report["overall"] == {"decision": "blocked", "exit_code": 1}
    assert {p: r["decision"] for p, r in report["plans"].items()} == {
        "drop_counter_columns": "blocked", PLAN: "open"}  # fmt: skip
    assert run_cli(capsys, "gate", PLAN)[0] == 0
    assert run_cli(capsys, "gate", "drop_counter_columns")[0] == 1
    code, out, _ = run_cli(capsys, "gate")
    assert code == 1
    assert "plan: drop_counter_columns (" in out
    assert f"plan: {PLAN} (" in out


@pytest.mark.parametrize("command", ["gate", "migrate"])
def test_an_unknown_plan_is_one_line_listing_the_plans(command, seeded, capsys):
    code, _, err = run_cli(capsys, command, "drop_everything")
    assert code == 2
    line = one_error_line(err)
    assert "unknown plan 'drop_everything'" in line
    assert f"drop_counter_columns, {PLAN}" in line


def test_only_migration_005_takes_a_sql_file(seeded, capsys, tmp_path):
    path = tmp_path / "x.sql"
    path.write_text("ALTER TABLE partition_progress DROP COLUMN failed;\n")
    code, _, err = run_cli(capsys, "migrate", PLAN, "--sql", str(path))
    assert code == 2
    assert "--sql is for drop_counter_columns only" in one_error_line(err)


# --- migrate partition_flags_exclusive -------------------------------------------------------


def test_dry_run_prints_both_steps_and_changes_nothing(seeded, db, capsys):
    code, out, err = run_cli(capsys, "migrate", PLAN)
    assert (code, err) == (0, "")
    assert f"     {ADD}" in out
    assert f"     {VALIDATE}" in out
    assert hashlib.sha256(f"{ADD}\n{VALIDATE}".encode()).hexdigest() in out
    assert "lock_timeout 2s (at most 5 attempts with backoff)" in out
    assert "nothing changed" in out
    assert constraint(db) == "absent"


def test_apply_adds_and_validates_then_rollback_drops_it(open_gate, db, capsys):
    code, out, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", " alice ")
    assert code == 0, out + err
    assert "gate: open (evidence hash " in out
    assert f"added {CONSTRAINT} NOT VALID; validating" in out
    assert "applied: " in out
    assert constraint(db) == "valid"
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE partition_progress SET failed = true WHERE partition_id = 1")
    [audit] = audit_rows(db)
    assert (audit["plan"], audit["action"], audit["status"], audit["operator"]) == (
        PLAN, "apply", "applied", "alice")  # fmt: skip
    assert audit["sql_text"] == f"{ADD}\n{VALIDATE}"
    assert audit["gate_evidence_hash"]
    code, out, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")
    assert code == 1
    assert "already exists and is validated" in one_error_line(err)

    code, out, err = run_cli(capsys, "migrate", PLAN, "--rollback", "--operator", "bob")
    assert code == 0, out + err
    assert f"rolled back: dropped {CONSTRAINT}" in out
    assert constraint(db) == "absent"
    rollback = audit_rows(db)[-1]
    assert (rollback["plan"], rollback["action"], rollback["status"]) == (
        PLAN, "rollback", "applied")  # fmt: skip
    assert rollback["sql_text"].endswith(f'DROP CONSTRAINT "{CONSTRAINT}";')
    code, _, err = run_cli(capsys, "migrate", PLAN, "--rollback", "--operator", "bob")
    assert code == 1
    assert "nothing to roll back" in one_error_line(err)


def test_the_gate_reports_the_applied_constraint(open_gate, db, capsys):
    assert run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")[0] == 0
    _, out, _ = run_cli(capsys, "gate", PLAN, "--format", "json")
    assert json.loads(out)["evidence"]["constraint"]["status"] == "valid"


def test_apply_is_refused_while_flag_conflict_is_not_clean(seeded, db, capsys):
    # Settled (older than the checks' settle time), so flag_conflict judges it.
    db.execute("UPDATE partition_progress SET failed = true, updated_at = now() - interval '1h'"
               " WHERE run_id = 'r3' AND partition_id = 1")  # fmt: skip
    assert run_cli(capsys, "check", "--full")[0] == 1
    assert run_cli(capsys, "gate", PLAN)[0] == 1
    code, out, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")
    assert code == 1, out + err
    line = one_error_line(err)
    assert line.startswith("dq-monitor: error: refused: the gate is blocked (")
    assert f"run `dq-monitor gate {PLAN}` for the evidence" in line
    assert constraint(db) == "absent"
    assert audit_rows(db) == []


def test_apply_without_any_check_run_is_refused(seeded, db, capsys):
    code, _, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")
    assert code == 1
    assert "no successful run recorded" in one_error_line(err)
    assert constraint(db) == "absent"


def test_a_conflicting_row_makes_validate_fail_with_nothing_left(open_gate, db, capsys):
    # Written after the gate's last look: only VALIDATE can see it.
    db.execute("UPDATE partition_progress SET failed = true WHERE run_id = 'r7'"
               " AND partition_id = 2")  # fmt: skip
    code, out, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")
    assert code == 1, out + err
    line = one_error_line(err)
    assert "VALIDATE failed" in line
    assert "23514" in line or "violated" in line
    assert "the NOT VALID constraint was dropped again: nothing changed" in line
    assert constraint(db) == "absent"
    [audit] = audit_rows(db)
    assert (audit["plan"], audit["status"]) == (PLAN, "failed")
    assert "VALIDATE failed" in audit["error"]


@pytest.mark.pg_timers  # lock_timeout never fires under libfaketime (see .ci/run)
def test_a_held_lock_makes_apply_retry_then_give_up_without_changes(
    open_gate, db, capsys, monkeypatch, partition_lock
):
    monkeypatch.setenv("DQ_GATE__LOCK_TIMEOUT", "100ms")
    monkeypatch.setenv("DQ_GATE__LOCK_RETRIES", "2")
    code, out, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")
    assert code == 1, out + err
    assert "attempt 2/2" in out
    assert "gave up: could not lock" in one_error_line(err)
    assert constraint(db) == "absent"
    assert [a["status"] for a in audit_rows(db)] == ["failed"]


def test_rollback_drops_a_constraint_left_not_valid(open_gate, db, capsys):
    db.execute(ADD)  # as an interrupted apply (or a hand) would leave it
    code, _, err = run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")
    assert code == 1
    assert "exists but is NOT VALID" in one_error_line(err)
    _, out, _ = run_cli(capsys, "gate", PLAN, "--format", "json")
    assert json.loads(out)["evidence"]["constraint"]["status"] == "not_valid"
    code, out, err = run_cli(capsys, "migrate", PLAN, "--rollback", "--operator", "alice")
    assert code == 0, out + err
    assert constraint(db) == "absent"


# --- migrate drop_counter_columns, named ------------------------------------------------------


def test_migration_005_by_name_is_the_default_plan(open_gate, db, capsys):
    code, named, _ = run_cli(capsys, "migrate", "drop_counter_columns")
    assert code == 0
    assert run_cli(capsys, "migrate")[1] == named
    code, out, err = run_cli(capsys, "migrate", "drop_counter_columns", "--apply",
                             "--operator", "alice")  # fmt: skip
    assert code == 0, out + err
    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "alice")
    assert code == 0, out + err
    assert [(a["plan"], a["action"], a["status"]) for a in audit_rows(db)] == [
        ("drop_counter_columns", "apply", "applied"),
        ("drop_counter_columns", "rollback", "applied"),
    ]


def test_the_constraint_plan_leaves_migration_005s_rollback_alone(open_gate, db, capsys):
    assert run_cli(capsys, "migrate", "--apply", "--operator", "alice")[0] == 0
    assert run_cli(capsys, "migrate", PLAN, "--apply", "--operator", "alice")[0] == 0
    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "alice")
    assert code == 0, out + err  # restores from migration 005's apply, not the constraint's
    assert constraint(db) == "valid"
