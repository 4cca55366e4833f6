"""The gate cannot be fooled: adversarial readers, resets and catalog objects on a real server.

Every test starts from a gate that would open (eight clean days recorded, pg_stat_statements
sampled when the window began), lets another role do what a real reader or an operator could
do, and asserts that the gate does not open and that its evidence says why. The harness's own
session is not tracked by pg_stat_statements: seeding data is not a reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from checks import migration_005
from monitor.gate.report import render_text
from monitor.gate.verdict import Decision, GateReport
from tests.helpers import evaluate_gate, run_cli
from tests.monitor.doctor.test_grants import grants_sql
from tests.monitor.gate.test_gate import insert_history

READER = "gate_reader"


class Gate:
    """The database under test, the times that matter and a way to act as another role."""

    def __init__(self, db: psycopg.Connection[Any], db_url: str, dbname: str) -> None:
        self.db = db
        self.db_url = db_url
        self.dbname = dbname
        self.env: dict[str, str] = {}
        self.roles: list[str] = []
        self.now = dt.datetime.now(dt.UTC)
        self.window_began = self.now - dt.timedelta(days=30)

    def sample(self, at: dt.datetime) -> GateReport:
        """An evaluation at `at`, as the service makes every few minutes."""
        return evaluate_gate(at, **self.env)

    def verdict(self) -> GateReport:
        return evaluate_gate(dt.datetime.now(dt.UTC), **self.env)

    def url(self, role: str) -> str:
        return psycopg.conninfo.make_conninfo(self.db_url, user=role)

    def role(self, name: str = READER) -> str:
        """A login role that may read the monitored tables; dropped after the test."""
        ident = sql.Identifier(name)
        self.db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
        self.db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        self.roles.append(name)
        self.db.execute(
            sql.SQL("GRANT SELECT ON run_metadata, partition_progress, worker_runs TO {}")
            .format(ident)
        )  # fmt: skip
        return name

    def run_as(self, role: str, *statements: str) -> None:
        with psycopg.connect(self.url(role), autocommit=True) as conn:
            for statement in statements:
                if statement.startswith("COPY"):
                    with conn.cursor().copy(statement) as copy:
                        for _ in copy:
                            pass
                    continue
                cursor = conn.execute(statement)
                if cursor.description:
                    cursor.fetchall()

    def drop_roles(self) -> None:
        for name in reversed(self.roles):
            ident = sql.Identifier(name)
            self.db.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(ident))
            self.db.execute(sql.SQL("DROP ROLE {}").format(ident))


def prepare(db: psycopg.Connection[Any]) -> None:
    """The harness's statements are not readers; the extension is installed."""
    db.execute("SET pg_stat_statements.track = none")
    db.execute("CREATE EXTENSION pg_stat_statements")


@pytest.fixture
def gate(monkeypatch, db_url, db) -> Iterator[Gate]:
    """A gate that opens now: eight clean days, pg_stat_statements sampled 30 days ago."""
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    prepare(db)
    harness = Gate(db, db_url, db.execute("SELECT current_database()").fetchone()[0])
    harness.sample(harness.window_began)  # creates the state schema and the first sample
    insert_history(db, 8)
    try:
        yield harness
    finally:
        harness.drop_roles()


def assert_not_open(report: GateReport, evidence: str, status: str, *words: str) -> dict[str, Any]:
    item = report.evidence[evidence]
    assert report.decision is not Decision.OPEN, render_text(report)
    assert item["status"] == status, render_text(report)
    for word in words:
        assert word in item["reason"], item["reason"]
    return item


def test_the_fixture_opens_without_an_adversary(gate):
    report = gate.verdict()
    assert report.decision is Decision.OPEN, render_text(report)
    assert report.evidence["readers"]["status"] == "none"


# --- 1. The monitor cannot read other roles' statements ----------------------------------


def test_hidden_statement_text_makes_readers_unknown(gate, db_url):
    monitor = gate.role("gate_lowpriv")
    gate.env = {"DQ_DATABASE_URL": gate.url(monitor), "DQ_STATE_DATABASE_URL": db_url}
    gate.sample(gate.window_began + dt.timedelta(seconds=1))
    gate.run_as(gate.role(), "SELECT run_id, failed_workers FROM run_metadata")
    assert_not_open(gate.verdict(), "readers", "unknown", "<insufficient privilege>",
                    "GRANT pg_read_all_stats TO gate_lowpriv", "Database grants")  # fmt: skip


# --- 2. Targeted resets and evictions leave no trace in pg_stat_statements_info --------------


@pytest.mark.parametrize(
    "reset",
    [
        "SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = '{role}'))",
        "SELECT pg_stat_statements_reset(0, 0, queryid) FROM pg_stat_statements"
        " WHERE query LIKE '%failed_workers%' AND userid = '{role}'::regrole",
    ],
    ids=["by-role", "by-queryid"],
)
def test_a_targeted_reset_after_a_reader_ran_makes_readers_unknown(gate, reset):
    reader = gate.role()
    gate.run_as(reader, "SELECT run_id, failed_workers FROM run_metadata")
    found = gate.sample(gate.now - dt.timedelta(days=1))  # the service's sample saw it
    assert found.evidence["readers"]["status"] == "found"
    gate.db.execute(reset.format(role=reader))
    info = gate.db.execute("SELECT count(*) FROM pg_stat_statements WHERE userid = %s::regrole",
                           (reader,)).fetchone()  # fmt: skip
    assert info == (0,)  # the reader's statement is gone, and stats_reset did not move
    assert_not_open(gate.verdict(), "readers", "unknown", "disappeared", "reset")


# --- 3. Tracking turned off for a role or the database -------------------------------------


@pytest.mark.parametrize(
    ("setting", "statement", "words"),
    [
        ("ALTER ROLE {role} SET pg_stat_statements.track = none",
         "SELECT run_id, failed_workers FROM run_metadata", ["role gate_reader", "track = none"]),
        ("ALTER DATABASE {db} SET pg_stat_statements.track = none",
         "SELECT run_id, failed_workers FROM run_metadata", ["database", "track = none"]),
        ("ALTER ROLE {role} SET pg_stat_statements.track_utility = off",
         "COPY run_metadata TO STDOUT", ["role gate_reader", "track_utility = off"]),
    ],
    ids=["role-track-none", "database-track-none", "role-track-utility-off"],
)  # fmt: skip
def test_tracking_turned_off_makes_readers_unknown(gate, setting, statement, words):
    reader = gate.role()
    gate.db.execute(setting.format(role=reader, db=sql.Identifier(gate.dbname).as_string(None)))
    gate.run_as(reader, statement)
    assert_not_open(gate.verdict(), "readers", "unknown", *words)


def test_a_role_that_may_turn_tracking_off_itself_makes_readers_unknown(gate):
    reader = gate.role()
    gate.db.execute(f"GRANT SET ON PARAMETER pg_stat_statements.track TO {reader}")
    gate.run_as(reader, "SET pg_stat_statements.track = none",
                "SELECT run_id, failed_workers FROM run_metadata")  # fmt: skip
    assert_not_open(gate.verdict(), "readers", "unknown", "role gate_reader may SET")


def test_a_publication_of_the_counters_makes_readers_unknown(gate):
    gate.db.execute("CREATE PUBLICATION runs_cdc FOR TABLE run_metadata")
    assert_not_open(gate.verdict(), "readers", "unknown", "publication runs_cdc", "subscribers")
    gate.db.execute("ALTER PUBLICATION runs_cdc SET TABLE run_metadata (run_id, status)")
    assert gate.verdict().decision is Decision.OPEN


# --- 4. Readers that do not name the columns ------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM run_metadata",
        "SELECT * FROM public.run_metadata WHERE status = 'done'",
        "SELECT to_jsonb(rm) FROM run_metadata rm",
        "SELECT rm.* FROM run_metadata rm",
        "SELECT row_to_json(rm) FROM run_metadata AS rm",
        "SELECT rm FROM run_metadata rm",
        "SELECT rm::text FROM Run_Metadata rm",
        "TABLE run_metadata",
        "COPY run_metadata TO STDOUT",
        "SELECT x.e FROM run_metadata AS x(a, b, c, d, e)",
        'SELECT U&"completed\\005fworkers" FROM run_metadata',
        "SELECT U&\"failed!005fworkers\" UESCAPE '!' FROM run_metadata",
        'SELECT run_id FROM "public".U&"run\\005fmetadata" WHERE U&"failed\\005fworkers" > 0',
        "WITH r AS (SELECT * FROM run_metadata) SELECT count(*) FROM r",
        "SELECT failed_workers(rm) FROM run_metadata rm",
        "DO $$ BEGIN EXECUTE 'SELECT * FROM run_metadata'; END $$",
        "CREATE TEMP VIEW v AS SELECT run_id, failed_workers FROM run_metadata"
        " -- then: SELECT * FROM v",
    ],
)
def test_a_reader_that_does_not_name_the_columns_is_found(gate, statement):
    gate.run_as(gate.role(), *statement.split(" -- then: "))
    item = assert_not_open(gate.verdict(), "readers", "found", READER)
    assert [s["role"] for s in item["statements"]] == [READER]


@pytest.mark.parametrize(
    "statement",
    [
        'SELECT "failed_workers" FROM run_metadata',
        "SELECT FAILED_WORKERS FROM run_metadata",
        "SELECT sum(rm.completed_workers) FROM public.run_metadata rm",
    ],
)
def test_a_reader_that_names_a_column_in_any_spelling_is_found(gate, statement):
    gate.run_as(gate.role(), statement)
    assert_not_open(gate.verdict(), "readers", "found", READER)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM run_metadata",
        "SELECT run_id, status FROM run_metadata WHERE status = 'done'",
        "SELECT pp.* FROM partition_progress pp JOIN run_metadata rm USING (run_id)",
        "SELECT rm.run_id FROM run_metadata rm WHERE rm IS NOT NULL",
        "SELECT * FROM partition_progress",
    ],
)
def test_a_statement_that_reads_no_counter_is_not_a_reader(gate, statement):
    gate.run_as(gate.role(), statement)
    report = gate.verdict()
    assert report.evidence["readers"]["status"] == "none", render_text(report)
    assert report.decision is Decision.OPEN


# --- 5. Catalog objects that read the counters without naming them --------------------------


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        ("CREATE VIEW v_json AS SELECT run_id, to_jsonb(rm)->>'failed_workers' AS failed"
         " FROM run_metadata rm", "view v_json"),
        ("CREATE TABLE audit_log (j jsonb);"
         " CREATE RULE log_runs AS ON UPDATE TO partition_progress DO ALSO INSERT INTO audit_log"
         " SELECT to_jsonb(rm) FROM run_metadata rm WHERE rm.run_id = new.run_id",
         "rule log_runs on partition_progress"),
        ("CREATE FUNCTION runs_json() RETURNS SETOF json LANGUAGE sql AS"
         " $$ SELECT row_to_json(r) FROM run_metadata r $$", "function runs_json()"),
        ("CREATE FUNCTION first_run() RETURNS text LANGUAGE plpgsql AS $$ DECLARE rec record;"
         " BEGIN SELECT * INTO rec FROM run_metadata LIMIT 1; RETURN rec::text; END $$",
         "function first_run()"),
        ("CREATE FUNCTION atomic_json() RETURNS SETOF jsonb LANGUAGE sql"
         " BEGIN ATOMIC SELECT to_jsonb(rm) FROM run_metadata rm; END", "function atomic_json()"),
        ("CREATE FUNCTION as_json(r run_metadata) RETURNS jsonb LANGUAGE sql AS"
         " $$ SELECT to_jsonb(r) $$", "function as_json(run_metadata)"),
        ("CREATE TABLE run_snapshots (taken timestamptz, r run_metadata)",
         "column r of table run_snapshots"),
        ("CREATE TABLE audit_log (j jsonb); CREATE FUNCTION audit() RETURNS trigger"
         " LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit_log VALUES (to_jsonb(NEW));"
         " RETURN NEW; END $$; CREATE TRIGGER audit AFTER UPDATE ON run_metadata"
         " FOR EACH ROW EXECUTE FUNCTION audit()", "function audit()"),
        ("CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL;"
         " END $$; CREATE TRIGGER on_failure AFTER UPDATE ON run_metadata FOR EACH ROW"
         " WHEN ((to_jsonb(NEW)->>'failed_workers')::int > 0) EXECUTE FUNCTION noop()",
         "trigger on_failure on run_metadata"),
        ("CREATE FUNCTION sneaky_e() RETURNS bigint LANGUAGE plpgsql AS $$ DECLARE n bigint;"
         " BEGIN EXECUTE E'SELECT count(*) FROM run\\x5fmetadata r WHERE r IS NOT NULL"
         " AND to_jsonb(r) ? \\'x\\'' INTO n; RETURN n; END $$", "function sneaky_e()"),
    ],
    ids=["view-to-jsonb", "rule", "sql-function", "plpgsql-star", "begin-atomic", "row-type-arg",
         "row-type-column", "trigger-new", "trigger-when", "escaped-dynamic-sql"],
)  # fmt: skip
def test_a_catalog_object_that_reads_whole_rows_is_a_dependency(gate, ddl, expected):
    gate.db.execute(ddl)
    item = assert_not_open(gate.verdict(), "dependencies", "found", expected)
    assert any(o.startswith(expected) for o in item["objects"]), item


def test_a_generated_column_is_a_dependency_and_the_migration_would_fail(gate):
    gate.db.execute(
        "ALTER TABLE run_metadata ADD COLUMN total integer"
        " GENERATED ALWAYS AS (completed_workers + failed_workers) STORED"
    )
    item = assert_not_open(gate.verdict(), "dependencies", "found",
                           "generated column total of table run_metadata")  # fmt: skip
    assert "generated column total of table run_metadata" in item["objects"]
    with pytest.raises(psycopg.errors.DependentObjectsStillExist), gate.db.transaction():
        gate.db.execute(migration_005())


def test_the_report_says_what_remains_undetectable(gate):
    gate.db.execute(
        "CREATE FUNCTION sneaky() RETURNS bigint LANGUAGE plpgsql AS $$ DECLARE n bigint;"
        " BEGIN EXECUTE 'SELECT sum(failed_' || 'workers) FROM run_' || 'metadata' INTO n;"
        " RETURN n; END $$"
    )
    text = render_text(gate.verdict()).splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("  readers: "))
    assert text[at + 1].startswith("    undetectable: ")
    assert "dynamic SQL" in text[at + 1]
    assert "replicas" in text[at + 1]


# --- 6. The monitor's own statements, whichever role runs it -------------------------------


@pytest.fixture
def service(monkeypatch, db_url, db, capsys) -> Iterator[Callable[[], GateReport]]:
    """dq_monitor (the README's grants) runs `dq-monitor check`; the gate runs as the owner."""
    prepare(db)
    dbname = db.execute("SELECT current_database()").fetchone()[0]
    db.execute("DROP ROLE IF EXISTS dq_monitor")
    db.execute(grants_sql(dbname))
    service_url = psycopg.conninfo.make_conninfo(db_url, user="dq_monitor", password="change-me")
    now = dt.datetime.now(dt.UTC)
    try:
        evaluate_gate(now - dt.timedelta(days=30), DQ_DATABASE_URL=service_url)
        monkeypatch.setenv("DQ_DATABASE_URL", service_url)
        for _ in range(2):  # counter_writes: the baseline, then the comparison
            code, out, err = run_cli(capsys, "check")
            assert code == 0, out + err
        insert_history(db, 8)
        yield lambda: evaluate_gate(dt.datetime.now(dt.UTC), DQ_DATABASE_URL=db_url)
    finally:
        db.execute("DROP OWNED BY dq_monitor CASCADE")
        db.execute("DROP ROLE dq_monitor")


def test_the_services_statements_are_not_readers_when_the_owner_runs_the_gate(service, db):
    rows = db.execute(
        "SELECT count(*) FROM pg_stat_statements WHERE userid = 'dq_monitor'::regrole"
        " AND query LIKE '%%failed_workers%%'"
    ).fetchone()
    assert rows[0] >= 2  # counter_writes' baseline and comparison
    report = service()
    assert report.evidence["readers"]["status"] == "none", render_text(report)
    assert report.decision is Decision.OPEN, render_text(report)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT run_id, failed_workers FROM run_metadata",
        "SELECT /* dq-monitor:counter_writes */ run_id, failed_workers FROM run_metadata",
    ],
    ids=["plain", "copied-marker"],
)
def test_a_third_role_is_found_next_to_the_service(service, db, db_url, statement):
    db.execute("DROP ROLE IF EXISTS gate_reader")
    db.execute("CREATE ROLE gate_reader LOGIN")
    try:
        db.execute("GRANT SELECT ON run_metadata TO gate_reader")
        with psycopg.connect(psycopg.conninfo.make_conninfo(db_url, user="gate_reader")) as conn:
            conn.execute(statement).fetchall()
        report = service()
        item = assert_not_open(report, "readers", "found", "gate_reader")
        assert {s["role"] for s in item["statements"]} == {"gate_reader"}
    finally:
        db.execute("DROP OWNED BY gate_reader CASCADE")
        db.execute("DROP ROLE gate_reader")


def test_a_failed_apply_leaves_no_reader_behind(monkeypatch, db_url, db, capsys, tmp_path):
    """The apply's archive statements (run as the owner) are dq-monitor's own: after a
    failed apply the gate is open again, as the README's procedure needs."""
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_GATE__REQUIRED_CLEAN_PERIOD", "0s")
    monkeypatch.setenv("DQ_GATE__ACCEPT_WEAKER_SETTINGS", "true")  # the procedure, not the wait
    prepare(db)
    db.execute(
        "INSERT INTO run_metadata (run_id, completed_workers, failed_workers)"
        " SELECT 'r' || g, g, 1 FROM generate_series(1, 20) g"
    )
    assert run_cli(capsys, "check", "--full")[0] == 0
    assert run_cli(capsys, "gate")[0] == 0
    failing = tmp_path / "fails.sql"
    failing.write_text("ALTER TABLE run_metadata DROP COLUMN completed_workers;\nSELECT 1/0;\n")
    code, out, err = run_cli(capsys, "migrate", "--apply", "--operator", "alice",
                             "--sql", str(failing))  # fmt: skip
    assert code != 0, out + err
    ours = db.execute(
        "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%%dq-monitor:migrate%%'"
        " AND query LIKE '%%failed_workers%%' AND userid = current_user::regrole"
    ).fetchone()
    assert ours[0] >= 2  # the checksum and the copy into the archive
    code, out, err = run_cli(capsys, "gate")
    assert code == 0, out + err
