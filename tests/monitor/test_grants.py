"""The README's database grants, as written, are enough for the monitor and no more."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.factories import seed_race
from tests.helpers import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def grants_sql(dbname: str) -> str:
    section = README.read_text().split("### Database grants", 1)[1]
    block = re.search(r"```sql\n(.+?)```", section, re.DOTALL)
    assert block, "the README's grants block is missing"
    return block.group(1).replace("DATABASE jobs", f'DATABASE "{dbname}"')


def test_the_monitor_runs_with_only_the_documented_grants(monkeypatch, db_url, db, capsys):
    dbname = db.execute("SELECT current_database()").fetchone()[0]
    db.execute("DROP ROLE IF EXISTS dq_monitor")
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute(grants_sql(dbname))
    seed_race(db, "race")
    monitor_url = psycopg.conninfo.make_conninfo(db_url, user="dq_monitor", password="change-me")
    monkeypatch.setenv("DQ_DATABASE_URL", monitor_url)
    try:
        code, out, err = run_cli(capsys, "check")
        assert code == 1, err
        assert "dashboard_mismatch" in out
        assert "permission denied" not in err
        code, _, err = run_cli(capsys, "gate", "--format", "json")
        assert code in (1, 4), err
        with (
            psycopg.connect(monitor_url, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("UPDATE run_metadata SET failed_workers = 0")
    finally:
        db.execute("DROP OWNED BY dq_monitor CASCADE")
        db.execute("DROP ROLE dq_monitor")
