"""`dq-monitor migrate` end to end on a real PostgreSQL: dry run, gate, lock, archive, rollback.

Every test starts from a fresh database holding the reference schema. The `open_gate`
fixture brings it to an open gate the way an operator would: pg_stat_statements installed,
500 runs with non-zero counters, one clean `check --full`, then `gate` exits 0.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from checks import migration_005
from monitor.cli.main import main
from tests.factories import seed_race
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
COLUMNS = ("completed_workers", "failed_workers")
RUNS = 500
SHIPPED_SQL = migration_005()
AUDIT = "dq_monitor.migration_audit"
ARCHIVE = "dq_monitor.migration_archive"
TABLE = '"public"."run_metadata"'  # as the plan and progress lines quote it

Counters = dict[str, tuple[int, int]]


# --- inspecting the database ---------------------------------------------------------------


def column_definitions(db: psycopg.Connection) -> dict[str, tuple[Any, ...]]:
    """name -> (type, default, nullable, format_type, attnotnull) of the two counters."""
    rows = db.execute(
        "SELECT c.column_name, c.data_type, c.column_default, c.is_nullable,"
        " format_type(a.atttypid, a.atttypmod), a.attnotnull"
        " FROM information_schema.columns c"
        " JOIN pg_attribute a ON a.attrelid = 'run_metadata'::regclass"
        "  AND a.attname = c.column_name AND NOT a.attisdropped"
        " WHERE c.table_schema = 'public' AND c.table_name = 'run_metadata'"
        " AND c.column_name = ANY(%s) ORDER BY c.column_name",
        (list(COLUMNS),),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def present_columns(db: psycopg.Connection) -> list[str]:
    return sorted(column_definitions(db))


def counters(db: psycopg.Connection) -> Counters:
    rows = db.execute(
        "SELECT run_id, completed_workers, failed_workers FROM run_metadata"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def run_ids(db: psycopg.Connection) -> list[str]:
    return sorted(r[0] for r in db.execute("SELECT run_id FROM run_metadata").fetchall())


def audit_rows(db: psycopg.Connection) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT id, action, status, operator, database_user, gate_evidence_hash, sql_checksum,"
        f" sql_text, archive_rows, archive_checksum, finished_at, error FROM {AUDIT} ORDER BY id"
    )
    names = [d.name for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def archived(db: psycopg.Connection) -> Counters:
    rows = db.execute(f"SELECT run_key, completed_workers, failed_workers FROM {ARCHIVE}")
    return {r[0]: (r[1], r[2]) for r in rows.fetchall()}


def archive_count(db: psycopg.Connection) -> int:
    row = db.execute(f"SELECT count(*) FROM {ARCHIVE}").fetchone()
    assert row is not None
    return int(row[0])


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dq-monitor: error: "), err
    return lines[0]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> dict[str, str]:
    """The DQ_* settings of every test here (also handed to subprocesses)."""
    # A clean period of 0s is weaker than the default 7d: it applies only when accepted, and
    # every report and the audit row then say so.
    values = {"DQ_DATABASE_URL": db_url, "DQ_GATE__REQUIRED_CLEAN_PERIOD": "0s",
              "DQ_GATE__ACCEPT_WEAKER_SETTINGS": "true"}  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def seeded(env: dict[str, str], db: psycopg.Connection) -> Counters:
    """pg_stat_statements installed and 500 runs with non-zero counters; returns them."""
    db.execute("SET pg_stat_statements.track = none")  # the harness is not a reader
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute(
        "INSERT INTO run_metadata (run_id, completed_workers, failed_workers)"
        f" SELECT 'r' || g, g, g % 3 FROM generate_series(1, {RUNS}) g"
    )
    original = counters(db)
    assert len(original) == RUNS
    return original


@pytest.fixture
def open_gate(
    seeded: Counters, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> Counters:
    """A database whose gate is open: one clean full sweep recorded, nothing blocking."""
    code, out, err = run_cli(capsys, "check", "--full")
    assert code == 0, out + err
    code, out, err = run_cli(capsys, "gate")
    assert code == 0, out + err
    return seeded


@pytest.fixture
def applied(
    open_gate: Counters, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> Counters:
    """Migration 005 applied by alice; returns the counters as they were before."""
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    assert code == 0, out + err
    assert present_columns(db) == []
    return open_gate


@pytest.fixture
def table_lock(db_url: str) -> Iterator[psycopg.Connection]:
    """Another session holding ACCESS SHARE on run_metadata (as a long report query would)."""
    with psycopg.connect(db_url, autocommit=True) as other, other.transaction():
        other.execute("LOCK TABLE run_metadata IN ACCESS SHARE MODE")
        yield other


def write_sql(tmp_path: Path, text: str) -> str:
    path = tmp_path / "migration.sql"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_with_the_exact_sql_and_changes_nothing(seeded, db, capsys):
    before = column_definitions(db)

    code, out, err = run_cli(capsys, "migrate")

    assert code == 0, err
    assert err == ""
    assert "ALTER TABLE run_metadata DROP COLUMN completed_workers;" in out
    assert "ALTER TABLE run_metadata DROP COLUMN failed_workers;" in out
    assert hashlib.sha256(SHIPPED_SQL.encode()).hexdigest() in out
    assert f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE;" in out
    assert "nothing changed" in out
    assert column_definitions(db) == before
    assert sorted(before) == sorted(COLUMNS)
    assert counters(db) == seeded


def test_dry_run_of_a_custom_file_shows_that_file(seeded, db, capsys, tmp_path):
    text = "-- no CASCADE here, the comment may say so\nALTER TABLE run_metadata DROP COLUMN x;\n"
    path = write_sql(tmp_path, text)

    code, out, _ = run_cli(capsys, "migrate", "--sql", path)

    assert code == 0
    assert f"({path})" in out
    assert "     ALTER TABLE run_metadata DROP COLUMN x;" in out
    assert hashlib.sha256(text.encode()).hexdigest() in out
    assert present_columns(db) == sorted(COLUMNS)


# --- apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize("history", ["defect", "none"])
def test_apply_is_refused_while_the_gate_is_closed(history, seeded, db, capsys):
    if history == "defect":
        seed_race(db, "race")
        code, _, _ = run_cli(capsys, "check", "--full")
        assert code == 1

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 1, out + err
    line = one_error_line(err)
    assert line.startswith("dq-monitor: error: refused: the gate is blocked (")
    assert "run `dq-monitor gate` for the evidence" in line
    if history == "defect":
        assert "violation" in line
    else:
        assert "no successful run recorded" in line
    assert "applied" not in out
    assert present_columns(db) == sorted(COLUMNS)
    assert archive_count(db) == 0
    assert audit_rows(db) == []


def test_apply_archives_verifies_drops_and_audits(open_gate, db, capsys):
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 0, out + err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("WARNING: evaluated with weaker settings than the defaults")
    assert lines[1].startswith("gate: open (evidence hash ")
    assert f"locking {TABLE} (attempt 1/5, lock_timeout 2s)" in lines
    assert f"archived {RUNS} rows into the state store; count and checksum verified" in lines
    assert lines[-1] == "applied: dropped completed_workers, failed_workers; audit #1"

    assert present_columns(db) == []
    assert run_ids(db) == sorted(open_gate)  # only the two columns went
    assert archived(db) == open_gate

    [audit] = audit_rows(db)
    assert audit["id"] == 1
    assert audit["action"] == "apply"
    assert audit["status"] == "applied"
    assert audit["operator"] == "alice"
    assert audit["database_user"] == "postgres"
    assert re.fullmatch(r"[0-9a-f]{64}", audit["gate_evidence_hash"])
    assert audit["gate_evidence_hash"] in lines[1]
    assert audit["sql_checksum"] == hashlib.sha256(SHIPPED_SQL.encode()).hexdigest()
    assert audit["sql_text"] == SHIPPED_SQL
    assert audit["archive_rows"] == RUNS
    assert audit["archive_checksum"]
    assert audit["finished_at"] is not None
    assert audit["error"] is None


def test_operator_name_is_stripped_in_the_audit(open_gate, db, capsys):
    code, _, err = run_cli(capsys, "migrate", "--apply", "--operator", "  carol  ")

    assert code == 0, err
    assert [a["operator"] for a in audit_rows(db)] == ["carol"]


def test_second_apply_is_refused_as_already_dropped(applied, db, capsys):
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 1, out
    line = one_error_line(err)
    assert "refused: the columns are already dropped" in line
    assert [a["status"] for a in audit_rows(db)] == ["applied"]
    assert archived(db) == applied


@pytest.mark.pg_timers
def test_a_held_lock_makes_apply_retry_then_give_up_without_changes(
    open_gate, db, table_lock, monkeypatch, capsys
):
    monkeypatch.setenv("DQ_GATE__LOCK_TIMEOUT", "1s")
    monkeypatch.setenv("DQ_GATE__LOCK_RETRIES", "2")
    before = column_definitions(db)

    started = time.monotonic()
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    elapsed = time.monotonic() - started

    assert code == 1, out + err
    assert out.splitlines()[2:] == [
        f"locking {TABLE} (attempt 1/2, lock_timeout 1s)",
        "the table is busy; retrying in 1.0s",
        f"locking {TABLE} (attempt 2/2, lock_timeout 1s)",
    ]
    line = one_error_line(err)
    assert f"gave up: could not lock {TABLE} within 1s in 2 attempts" in line
    assert "nothing changed" in line
    # Two lock waits of 1 s and one backoff of 1 s: bounded, never an unbounded wait.
    assert 2.5 < elapsed < 15
    # Reading is compatible with the other session's ACCESS SHARE lock, still held.
    assert table_lock.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS
    assert column_definitions(db) == before
    assert counters(db) == open_gate
    [audit] = audit_rows(db)
    assert audit["action"] == "apply"
    assert audit["status"] == "failed"
    assert "gave up" in audit["error"]
    assert audit["archive_rows"] is None
    assert audit["finished_at"] is not None
    assert archive_count(db) == 0


def test_a_failing_migration_sql_changes_nothing(open_gate, db, capsys, tmp_path):
    # The first statement succeeds, the second fails: the transaction undoes both.
    path = write_sql(
        tmp_path,
        "ALTER TABLE run_metadata DROP COLUMN completed_workers;\n"
        "ALTER TABLE run_metadata DROP COLUMN no_such_column;\n",
    )
    before = column_definitions(db)

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice", "--sql", path)

    assert code == 1, out + err
    assert f"archived {RUNS} rows into the state store; count and checksum verified" in out
    line = one_error_line(err)
    assert "migration failed, nothing changed" in line
    assert "no_such_column" in line
    assert column_definitions(db) == before
    assert counters(db) == open_gate
    [audit] = audit_rows(db)
    assert audit["status"] == "failed"
    assert audit["sql_text"] == Path(path).read_text(encoding="utf-8")
    assert archive_count(db) == 0


# --- a dependency blocks the drop ------------------------------------------------------------


def test_a_view_on_a_column_blocks_the_gate_and_the_apply(open_gate, db, capsys):
    db.execute("CREATE VIEW failed_view AS SELECT run_id, failed_workers FROM run_metadata")

    code, out, _ = run_cli(capsys, "gate")
    assert code == 1
    assert "view failed_view uses failed_workers" in out

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 1, out + err
    line = one_error_line(err)
    assert line.startswith("dq-monitor: error: refused: the gate is blocked (")
    assert "view failed_view uses failed_workers" in line
    assert present_columns(db) == sorted(COLUMNS)
    assert db.execute("SELECT to_regclass('failed_view') IS NOT NULL").fetchone() == (True,)
    assert db.execute("SELECT count(*) FROM failed_view").fetchone() == (RUNS,)
    assert audit_rows(db) == []
    assert archive_count(db) == 0


# --- rollback --------------------------------------------------------------------------------


def test_rollback_restores_the_columns_and_every_value(open_gate, db, capsys):
    before = column_definitions(db)
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    assert code == 0, out + err
    assert present_columns(db) == []

    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "bob")

    assert code == 0, out + err
    assert err == ""
    assert f"restored {RUNS} rows; values verified against the archive" in out
    assert out.splitlines()[-1] == (
        f"rolled back: re-added completed_workers, failed_workers, restored {RUNS} rows"
        " from audit #1; audit #2"
    )
    assert column_definitions(db) == before
    assert before["completed_workers"] == ("integer", "0", "NO", "integer", True)
    assert counters(db) == open_gate

    apply, rollback = audit_rows(db)
    assert (apply["action"], apply["status"], apply["operator"]) == ("apply", "applied", "alice")
    assert (rollback["action"], rollback["status"]) == ("rollback", "applied")
    assert rollback["operator"] == "bob"
    assert rollback["database_user"] == "postgres"
    assert rollback["gate_evidence_hash"] is None
    assert rollback["archive_rows"] == RUNS
    assert rollback["archive_checksum"] == apply["archive_checksum"]


def test_rollback_then_apply_again(applied, db, capsys):
    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "bob")
    assert code == 0, out + err

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 0, out + err
    assert out.splitlines()[-1].endswith("audit #3")
    assert present_columns(db) == []
    rows = db.execute(
        f"SELECT audit_id, count(*) FROM {ARCHIVE} GROUP BY audit_id ORDER BY 1"
    ).fetchall()
    assert rows == [(1, RUNS), (3, RUNS)]
    assert [(a["action"], a["status"]) for a in audit_rows(db)] == [
        ("apply", "applied"),
        ("rollback", "applied"),
        ("apply", "applied"),
    ]


def test_rollback_when_nothing_was_applied_is_refused(seeded, db, capsys):
    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "bob")

    assert code == 1, out
    line = one_error_line(err)
    assert "refused: a column exists; there is nothing to roll back" in line
    assert audit_rows(db) == []
    assert counters(db) == seeded


def test_rollback_without_a_recorded_apply_is_refused(seeded, db, capsys):
    # Dropped by hand, outside dq-monitor: there is no archive to restore from.
    db.execute(SHIPPED_SQL)

    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "bob")

    assert code == 1, out
    line = one_error_line(err)
    assert "refused: no applied migration is recorded in the state store" in line
    assert present_columns(db) == []
    assert audit_rows(db) == []


# --- two applies at once ---------------------------------------------------------------------


def test_two_concurrent_applies_drop_the_columns_once(open_gate, env, db):
    # Either the loser finds the advisory lock taken, or it starts after the winner finished.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("DQ_")} | env
    command = [sys.executable, "-m", "monitor", "migrate", "--apply"]
    procs = [
        subprocess.Popen(
            [*command, "--operator", name],
            cwd=ROOT,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert sorted(code for code, _, _ in results) == [0, 1], results
    [(_, won, _)] = [r for r in results if r[0] == 0]
    [(_, _, lost)] = [r for r in results if r[0] == 1]
    assert "applied: dropped completed_workers, failed_workers; audit #1" in won
    line = one_error_line(lost)
    assert "refused: " in line
    assert (
        "another `dq-monitor migrate` is running" in line or "columns are already dropped" in line
    ), line
    assert present_columns(db) == []
    [audit] = audit_rows(db)
    assert audit["status"] == "applied"
    assert archived(db) == open_gate


# --- input errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("operator", [None, "", "   "])
def test_apply_without_an_operator_exits_2(operator, seeded, db, capsys):
    args = ["migrate", "--apply"] + ([] if operator is None else ["--operator", operator])

    code, out, err = run_cli(capsys, *args)

    assert code == 2, out
    assert "--operator NAME is required with --apply and --rollback" in one_error_line(err)
    assert present_columns(db) == sorted(COLUMNS)


def test_rollback_without_an_operator_exits_2(seeded, capsys):
    code, _, err = run_cli(capsys, "migrate", "--rollback")

    assert code == 2
    assert "--operator NAME is required" in one_error_line(err)


def test_missing_sql_file_exits_2(seeded, db, capsys, tmp_path):
    missing = tmp_path / "nope.sql"

    code, _, err = run_cli(capsys, "migrate", "--apply", "--operator", "a", "--sql", str(missing))

    assert code == 2
    line = one_error_line(err)
    assert f"--sql {missing}: cannot read it" in line
    assert present_columns(db) == sorted(COLUMNS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ALTER TABLE run_metadata DROP COLUMN failed_workers CASCADE;\n", "uses CASCADE"),
        ("alter table run_metadata drop column failed_workers cascade;\n", "uses CASCADE"),
        ("-- only a comment\n\n", "contains no SQL"),
        # Dynamic SQL hides what runs: a DO block, EXECUTE, CASCADE inside a function body.
        ("DO $$ BEGIN EXECUTE 'ALTER TABLE run_metadata DROP COLUMN completed_workers CASCADE';"
         " END $$;\n", "has a DO block"),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ ALTER TABLE run_metadata"
         " DROP COLUMN failed_workers CASCADE $$;\nSELECT f();\n", "uses CASCADE"),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN EXECUTE 'ALTER TABLE "
         "run_metadata DROP COLUMN ' || 'failed_workers'; END $f$;\nSELECT f();\n", "uses EXECUTE"),
        # The migration is one transaction that dq-monitor commits after verifying it.
        ("ALTER TABLE run_metadata DROP COLUMN completed_workers;\nCOMMIT;\n"
         "ALTER TABLE run_metadata DROP COLUMN failed_workers;\n", "has COMMIT"),
    ],
)  # fmt: skip
def test_unacceptable_sql_file_exits_2(text, message, seeded, db, capsys, tmp_path):
    path = write_sql(tmp_path, text)

    code, _, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice", "--sql", path)

    assert code == 2
    assert f"{path} {message}" in one_error_line(err)
    assert present_columns(db) == sorted(COLUMNS)


def test_apply_and_rollback_together_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "migrate", "--apply", "--rollback", "--operator", "alice")

    assert exit_info.value.code == 2
    _, err = capsys.readouterr()
    assert err.strip().splitlines()[-1] == (
        "dq-monitor migrate: error: argument --rollback: not allowed with argument --apply"
    )


def test_unreachable_database_exits_3_but_a_dry_run_needs_none(monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", "postgresql://dq:hunter2@127.0.0.1:1/nowhere")

    code, out, _ = run_cli(capsys, "migrate")
    assert code == 0
    assert "nothing changed" in out

    code, _, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
    assert code == 3
    assert "127.0.0.1:1/nowhere" in one_error_line(err)
    assert "hunter2" not in err


# --- regressions: SQL that drops too little, CASCADE hidden by a string, deleted runs --------


def test_sql_that_leaves_a_column_is_rolled_back(open_gate, db, capsys, tmp_path):
    original = counters(db)
    partial = write_sql(tmp_path, "ALTER TABLE run_metadata DROP COLUMN completed_workers;\n")
    code, _, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice", "--sql", partial)
    assert code == 1
    assert "the migration SQL left failed_workers in place; rolled back, nothing changed" in err
    assert present_columns(db) == sorted(COLUMNS)
    assert counters(db) == original
    assert archive_count(db) == 0
    assert [r["status"] for r in audit_rows(db)] == ["failed"]


def test_cascade_after_a_string_that_contains_dashes_is_still_refused(seeded, capsys, tmp_path):
    sneaky = write_sql(
        tmp_path,
        "COMMENT ON TABLE run_metadata IS 'runs -- one per job';"
        " ALTER TABLE run_metadata DROP COLUMN failed_workers CASCADE;\n",
    )
    code, _, err = run_cli(capsys, "migrate", "--sql", sneaky)
    assert code == 2
    assert "uses CASCADE" in err


def test_cascade_inside_a_block_comment_is_not_a_cascade(seeded, capsys, tmp_path):
    fine = write_sql(tmp_path, "/* no cascade here */ ALTER TABLE run_metadata"
                               " DROP COLUMN failed_workers;\n")  # fmt: skip
    code, out, _ = run_cli(capsys, "migrate", "--sql", fine)
    assert code == 0
    assert "nothing changed" in out


def test_rollback_after_runs_were_deleted_restores_the_rest(applied, db, capsys):
    original = applied
    db.execute("DELETE FROM run_metadata WHERE run_id IN ('r7', 'r8')")
    code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "bob")
    assert code == 0, err
    assert f"restored {RUNS - 2} rows; values verified against the archive; 2 archived runs" in out
    restored = counters(db)
    assert restored == {k: v for k, v in original.items() if k not in ("r7", "r8")}


# --- the catalog after the lock, and after the SQL -------------------------------------------


def wait_for_lock_wait(db: psycopg.Connection, table: str = "run_metadata") -> None:
    """Until some session waits for a lock on `table` (the apply's LOCK TABLE)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass(%s)",
            (table,),
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.02)  # polling for an event (a lock request), not waiting for time
    raise AssertionError(f"nobody waited for a lock on {table}")


@pytest.mark.parametrize(
    ("ddl", "found"),
    [
        ("CREATE INDEX counters_idx ON run_metadata (completed_workers)",
         "index counters_idx uses completed_workers"),
        ("ALTER TABLE run_metadata ADD CONSTRAINT failed_sane CHECK (failed_workers >= 0)",
         "constraint failed_sane uses failed_workers"),
    ],
)  # fmt: skip
def test_a_dependency_committed_while_the_apply_waits_for_its_lock_refuses_the_drop(
    open_gate, db, db_url, monkeypatch, capsys, ddl, found
):
    monkeypatch.setenv("DQ_GATE__LOCK_TIMEOUT", "30s")
    result: dict[str, int] = {}
    with psycopg.connect(db_url) as other:  # a transaction that holds its lock until commit
        other.execute(ddl)
        apply = threading.Thread(
            target=lambda: result.update(code=main(["migrate", "--apply", "--operator", "alice"]))
        )
        apply.start()
        try:
            wait_for_lock_wait(db)  # the gate said open; the apply now waits for its lock
        finally:
            other.commit()
            apply.join(60)
    out, err = capsys.readouterr()

    assert result == {"code": 1}, out + err
    line = one_error_line(err)
    assert "refused after locking" in line
    assert found in line
    assert "nothing changed" in line
    assert present_columns(db) == sorted(COLUMNS)
    assert counters(db) == open_gate
    name = found.split()[1]
    assert db.execute(
        "SELECT count(*) FROM pg_class WHERE relname = %s UNION ALL"
        " SELECT count(*) FROM pg_constraint WHERE conname = %s", (name, name)
    ).fetchall() in ([(1,), (0,)], [(0,), (1,)])
    [audit] = audit_rows(db)
    assert audit["status"] == "failed"
    assert found in audit["error"]
    assert archive_count(db) == 0


@pytest.mark.parametrize(
    ("extra", "difference"),
    [
        ("ALTER TABLE run_metadata DROP COLUMN status;", "removed column status"),
        ("CREATE INDEX started_idx ON run_metadata (started_at);", "added index started_idx"),
        ("ALTER TABLE run_metadata ADD CONSTRAINT sane CHECK (status <> '');",
         "added constraint sane"),
        ("ALTER TABLE run_metadata ADD COLUMN completed_workers_v2 integer;",
         "added column completed_workers_v2"),
    ],
)  # fmt: skip
def test_sql_that_changes_more_than_the_two_columns_is_rolled_back(
    open_gate, db, capsys, tmp_path, extra, difference
):
    path = write_sql(tmp_path, SHIPPED_SQL + extra + "\n")
    before = column_definitions(db)

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice", "--sql", path)

    assert code == 1, out + err
    line = one_error_line(err)
    assert "the migration SQL changed more than the two columns" in line
    assert difference in line
    assert "rolled back, nothing changed" in line
    assert column_definitions(db) == before
    assert db.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'run_metadata'::regclass"
        " AND attname = 'status' AND NOT attisdropped"
    ).fetchone() == (1,)
    assert db.execute("SELECT to_regclass('started_idx')").fetchone() == (None,)
    assert counters(db) == open_gate
    [audit] = audit_rows(db)
    assert audit["status"] == "failed"
    assert archive_count(db) == 0


def test_a_generated_column_dropped_by_a_function_is_caught_before_commit(
    open_gate, db, capsys, tmp_path
):
    # The file says neither CASCADE nor EXECUTE; the function it calls does both, and no
    # catalog row ties the function's text to the column names it assembles.
    db.execute(
        "ALTER TABLE run_metadata ADD COLUMN total integer"
        " GENERATED ALWAYS AS (completed_workers + failed_workers) STORED"
    )
    db.execute(
        "CREATE FUNCTION drop_counters() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN"
        " EXECUTE format('ALTER TABLE run_metadata DROP COLUMN %I CASCADE', 'completed' ||"
        " '_workers'); END $f$"
    )
    path = write_sql(
        tmp_path, "SELECT drop_counters();\nALTER TABLE run_metadata DROP COLUMN failed_workers;\n"
    )

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice", "--sql", path)

    assert code == 1, out + err
    line = one_error_line(err)
    assert "total" in line
    assert present_columns(db) == sorted(COLUMNS)
    assert db.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'run_metadata'::regclass"
        " AND attname = 'total' AND NOT attisdropped"
    ).fetchone() == (1,)
    assert counters(db) == open_gate
    assert archive_count(db) == 0


# --- timeouts the migration runs with --------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("lock_timeout", "0s", "must be more than 0s"),  # 0 means no lock timeout at all
        ("lock_timeout", "2m", "must be at most 1m"),
        ("statement_timeout", "0s", "must be more than 0s"),
        ("statement_timeout", "1h", "must be at most 10m"),
        ("evaluate_interval", "0s", "must be more than 0s"),
    ],
)
def test_the_migrations_timeouts_must_be_bounded(
    setting, value, message, seeded, db, monkeypatch, capsys
):
    monkeypatch.setenv(f"DQ_GATE__{setting.upper()}", value)

    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 2, out + err
    assert f"gate.{setting}: Value error, {message}" in err
    assert present_columns(db) == sorted(COLUMNS)


# --- the audit row repeats the gate's settings -----------------------------------------------


def test_the_audit_row_records_the_gate_settings_of_the_apply(open_gate, db, capsys):
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")

    assert code == 0, out + err
    warning = (
        "WARNING: evaluated with weaker settings than the defaults: "
        "required_clean_period 0s (default: 7d)"
    )
    assert out.splitlines()[0] == warning
    [settings] = db.execute(f"SELECT gate_settings FROM {AUDIT}").fetchone() or [None]
    assert settings["required_clean_period"] == "0s"
    assert settings["max_gap_intervals"] == 3
    assert settings["full_sweep_max_gap"] == "1d2h"
    assert settings["checks"] == [
        "dashboard_mismatch", "missing_worker_runs", "flag_conflict", "counter_writes"]
    assert settings["unknown_blocks"] is True
    assert settings["accept_weaker_settings"] is True
    assert settings["weaker"] == ["required_clean_period 0s (default: 7d)"]
