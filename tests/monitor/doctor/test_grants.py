"""The README's database grants, as written, are enough for the monitor and no more."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.factories import seed_race
from tests.helpers import run_cli

README = Path(__file__).resolve().parents[3] / "README.md"


def grants_sql(dbname: str) -> str:
    section = README.read_text().split("### Database grants", 1)[1]
    block = re.search(r"```sql\n(.+?)```", section, re.DOTALL)
    assert block, "the README's grants block is missing"
    return block.group(1).replace("DATABASE jobs", f'DATABASE "{dbname}"')


def test_the_monitor_runs_with_only_the_documented_grants(monkeypatch, readme_role, db, capsys):
    seed_race(db, "race")
    monkeypatch.setenv("DQ_DATABASE_URL", readme_role)
    code, out, err = run_cli(capsys, "check")
    assert code == 1, err
    assert "dashboard_mismatch" in out
    assert "permission denied" not in err
    code, _, err = run_cli(capsys, "gate", "--format", "json")
    assert code in (1, 4), err
    with (
        psycopg.connect(readme_role, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("UPDATE run_metadata SET failed_workers = 0")


def owner_sql() -> str:
    """The README's second block: the release manager's owner role."""
    section = README.read_text().split("### Database grants", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.+?)```", section, re.DOTALL)
    assert len(blocks) == 2, "the README's owner-role block is missing"
    return blocks[1]


def _counters(db: psycopg.Connection) -> dict[str, tuple[int, int]]:
    rows = db.execute("SELECT run_id, completed_workers, failed_workers FROM run_metadata")
    return {r[0]: (r[1], r[2]) for r in rows.fetchall()}


def _columns(db: psycopg.Connection) -> list[str]:
    rows = db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'run_metadata'::regclass"
        " AND attname IN ('completed_workers', 'failed_workers') AND NOT attisdropped"
    )
    return sorted(r[0] for r in rows.fetchall())


def test_the_readme_release_procedure_with_a_monitor_role_and_an_owner_role(
    monkeypatch, db_url, db, capsys
):
    dbname = db.execute("SELECT current_database()").fetchone()[0]
    for role in ("dq_monitor", "jobs_migrator"):
        db.execute(f"DROP ROLE IF EXISTS {role}")
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute(grants_sql(dbname))
    db.execute(owner_sql())
    db.execute(
        "INSERT INTO run_metadata (run_id, completed_workers, failed_workers)"
        " SELECT 'r' || g, g, g % 3 FROM generate_series(1, 50) g"
    )
    original = _counters(db)
    db.execute("SELECT pg_stat_statements_reset()")  # the seeding is no application's reading
    monitor_url = psycopg.conninfo.make_conninfo(db_url, user="dq_monitor", password="change-me")
    owner_url = psycopg.conninfo.make_conninfo(db_url, user="jobs_migrator", password="change-me")
    # A clean period of 0s, accepted as weaker than the default 7d: the procedure, not the wait.
    monkeypatch.setenv("DQ_GATE__REQUIRED_CLEAN_PERIOD", "0s")
    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")
    try:
        # The service's role runs the checks and the gate.
        monkeypatch.setenv("DQ_DATABASE_URL", monitor_url)
        code, out, err = run_cli(capsys, "check", "--full")
        assert code == 0, out + err
        code, out, err = run_cli(capsys, "gate")
        assert code == 0, out + err
        # The release manager: owner credentials for this one command, the state store as
        # dq_monitor (its schema receives the archive and the audit).
        monkeypatch.setenv("DQ_DATABASE_URL", owner_url)
        monkeypatch.setenv("DQ_STATE_DATABASE_URL", monitor_url)
        code, out, err = run_cli(capsys, "migrate")
        assert code == 0, out + err
        code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice")
        assert code == 0, out + err
        assert _columns(db) == []
        audit = db.execute(
            "SELECT status, operator, database_user, archive_rows FROM dq_monitor.migration_audit"
        ).fetchall()
        assert audit == [("applied", "alice", "jobs_migrator", len(original))]
        owner = db.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'dq_monitor'"
            " AND tablename = 'migration_archive'"
        ).fetchone()
        assert owner == ("dq_monitor",)
        # After applying, the service runs without counter_writes: its columns are gone.
        monkeypatch.setenv("DQ_DATABASE_URL", monitor_url)
        monkeypatch.delenv("DQ_STATE_DATABASE_URL")
        monkeypatch.setenv("DQ_CHECKS__COUNTER_WRITES__ENABLED", "false")
        code, out, err = run_cli(capsys, "check")
        assert code == 0, out + err
        # And the rollback, as the owner again.
        monkeypatch.setenv("DQ_DATABASE_URL", owner_url)
        monkeypatch.setenv("DQ_STATE_DATABASE_URL", monitor_url)
        code, out, err = run_cli(capsys, "migrate", "--rollback", "--operator", "bob")
        assert code == 0, out + err
        assert _counters(db) == original
    finally:
        for role in ("dq_monitor", "jobs_migrator"):
            db.execute(f"DROP OWNED BY {role} CASCADE")
            db.execute(f"DROP ROLE {role}")
