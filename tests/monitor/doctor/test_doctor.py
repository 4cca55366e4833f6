"""`dq-monitor doctor` on a real PostgreSQL and real HTTP servers: what it finds, what it hints."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from monitor import __version__
from monitor.demo.embedded import free_port
from monitor.store.schema import LATEST_VERSION as LATEST
from tests.helpers import run_cli


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str, db: psycopg.Connection) -> str:
    """The monitored database as the superuser, with pg_stat_statements installed."""
    db.execute("CREATE EXTENSION pg_stat_statements")
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    return db_url


@pytest.fixture
def role(db: psycopg.Connection) -> Iterator[str]:
    """A LOGIN role with no grants (the test server trusts loopback: no password needed)."""
    name = f"dq_doctor_{uuid.uuid4().hex[:8]}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    db.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def lines_by_name(out: str) -> dict[str, str]:
    """Item lines keyed by item name (the second column)."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition(" ")
        if status in {"ok", "problem", "skipped"}:
            found[rest.split()[0]] = line
    return found


def problems(out: str) -> dict[str, str]:
    return {name: line for name, line in lines_by_name(out).items() if line.startswith("problem")}


def test_fresh_reference_database_is_all_ok_and_doctor_writes_nothing(env, db, capsys):
    code, out, err = run_cli(capsys, "doctor")
    assert code == 0, out + err
    items = lines_by_name(out)
    assert all(line.startswith("ok ") for line in items.values()), out
    assert {
        "database.server_version", "database.table.run_metadata",
        "database.table.partition_progress", "database.table.worker_runs",
        "database.grant.schema_usage", "database.grant.select.run_metadata",
        "database.grant.select.partition_progress", "database.grant.select.worker_runs",
        "database.grant.pg_read_all_stats", "database.indexes", "database.pg_stat_statements",
        "state.database", "state.schema", "state.schema_version",
    } <= set(items)  # fmt: skip
    assert "PostgreSQL 1" in items["database.server_version"]
    assert "schema dq_monitor does not exist yet" in items["state.schema"]
    assert f"creates version {LATEST}" in items["state.schema_version"]
    assert out.rstrip().endswith("doctor: all ok (alert routes not checked: add --routes)")
    assert err == ""
    # Read-only: the missing state schema was reported, not created.
    assert db.execute("SELECT to_regnamespace('dq_monitor')").fetchone()[0] is None

    code, _, err = run_cli(capsys, "check")  # creates and upgrades the state schema
    assert code == 0, err
    code, out, _ = run_cli(capsys, "doctor", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    by_name = {item["name"]: item for item in payload["items"]}
    assert set(by_name["state.schema"]) == {"name", "status", "detail", "hint"}
    assert by_name["state.schema_version"]["status"] == "ok"
    expected = f"version {LATEST}, the version this build expects"
    assert by_name["state.schema_version"]["detail"] == expected
    assert by_name["state.tables"]["status"] == "ok"


def test_wrong_table_and_column_names_are_problems_with_the_setting_to_fix(
    env, monkeypatch, capsys
):
    monkeypatch.setenv("DQ_TABLES__WORKER_RUNS__NAME", "worker_runz")
    monkeypatch.setenv("DQ_TABLES__PARTITION_PROGRESS__UPDATED_AT", "modified_at")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 2
    found = problems(out)
    table = found["database.table.worker_runs"]
    assert "public.worker_runz does not exist" in table
    assert "hint: set tables.worker_runs.name (DQ_TABLES__WORKER_RUNS__NAME)" in table
    column = found["database.table.partition_progress"]
    assert "public.partition_progress has no column modified_at" in column
    assert "tables.partition_progress.updated_at (DQ_TABLES__PARTITION_PROGRESS__UPDATED_AT)" in (
        column
    )
    # No SELECT item for a table that is not there, and no index advice on a missing column.
    assert "database.grant.select.worker_runs" not in lines_by_name(out)
    assert "modified_at" not in "".join(line for n, line in found.items() if ".index" in n)
    assert set(found) == {"database.table.worker_runs", "database.table.partition_progress"}
    assert "exist (on the tables found)" in lines_by_name(out)["database.indexes"]
    assert out.rstrip().endswith("doctor: 2 problems (alert routes not checked: add --routes)")


def test_dropped_counter_columns_are_fine_once_counter_writes_is_disabled(env, db, monkeypatch,
                                                                          capsys):  # fmt: skip
    db.execute("ALTER TABLE run_metadata DROP COLUMN completed_workers, DROP COLUMN failed_workers")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 2
    line = problems(out)["database.table.run_metadata"]
    assert "has no column completed_workers, failed_workers" in line
    assert "disable counter_writes (DQ_CHECKS__COUNTER_WRITES__ENABLED=false)" in line
    monkeypatch.setenv("DQ_CHECKS__COUNTER_WRITES__ENABLED", "false")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0, out
    line = lines_by_name(out)["database.table.run_metadata"]
    assert "completed_workers, failed_workers dropped (counter_writes is disabled)" in line


def test_a_role_without_the_grants_gets_the_grant_statements(env, db, db_url, role, monkeypatch,
                                                             capsys):  # fmt: skip
    db.execute(sql.SQL("GRANT SELECT ON run_metadata, partition_progress TO {}").format(
        sql.Identifier(role)))  # fmt: skip
    monkeypatch.setenv("DQ_DATABASE_URL", psycopg.conninfo.make_conninfo(db_url, user=role))
    code, out, err = run_cli(capsys, "doctor")
    assert code == 2, err
    found = problems(out)
    assert set(found) == {
        "database.grant.select.worker_runs", "database.grant.pg_read_all_stats", "state.schema",
    }  # fmt: skip
    assert (
        f'hint: GRANT SELECT ON "public"."worker_runs" TO "{role}";'
        in (found["database.grant.select.worker_runs"])
    )
    stats = found["database.grant.pg_read_all_stats"]
    assert f'hint: GRANT pg_read_all_stats TO "{role}"; (README "Database grants")' in stats
    # The role may not create the missing state schema in this database.
    assert f"role {role} may not create it" in found["state.schema"]
    assert f'CREATE SCHEMA "dq_monitor" AUTHORIZATION "{role}";' in found["state.schema"]
    items = lines_by_name(out)
    assert items["database.grant.select.run_metadata"].startswith("ok")
    assert f"as role {role}" in items["database.server_version"]

    db.execute(sql.SQL("REVOKE USAGE ON SCHEMA public FROM PUBLIC"))
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 2
    usage = problems(out)["database.grant.schema_usage"]
    assert f'hint: GRANT USAGE ON SCHEMA "public" TO "{role}";' in usage
    assert lines_by_name(out)["database.indexes"].startswith("skipped")


def test_the_readme_grants_satisfy_doctor(readme_role, monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", readme_role)
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0, out
    assert "schema dq_monitor exists; role dq_monitor may use and create in it" in out
    assert "change-me" not in out


def test_a_missing_index_is_a_problem_with_its_create_index_statement(env, db, capsys):
    db.execute("DROP INDEX worker_runs_started_at_idx")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 2
    found = problems(out)
    assert set(found) == {"database.index.worker_runs(started_at)"}
    line = found["database.index.worker_runs(started_at)"]
    assert "missing index on public.worker_runs (started_at)" in line
    assert 'hint: CREATE INDEX CONCURRENTLY ON "public"."worker_runs" ("started_at");' in line


def test_an_unreachable_database_is_one_problem_line_without_secrets(monkeypatch, capsys):
    port = free_port()  # nobody listens here
    monkeypatch.setenv("DQ_DATABASE_URL", f"postgresql://doc_user:s3cret-pw@127.0.0.1:{port}/jobs")
    code, out, err = run_cli(capsys, "doctor")
    assert code == 2
    assert problems(out).keys() == {"database.connection"}
    line = problems(out)["database.connection"]
    assert f"127.0.0.1:{port}/jobs" in line
    assert "skipped  database.skipped" in out
    assert "database and state store items: no connection" in out
    assert "state.schema" not in out
    for text in (out, err):
        assert "s3cret-pw" not in text
        assert "doc_user" not in text
        assert "Traceback" not in text
    assert err == ""


def test_an_unreachable_separate_state_store_leaves_the_database_items(env, monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv("DQ_STATE_DATABASE_URL", f"postgresql://st:pw-9x@127.0.0.1:{port}/state")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 2
    assert problems(out).keys() == {"state.connection"}
    assert f"127.0.0.1:{port}/state" in problems(out)["state.connection"]
    assert lines_by_name(out)["database.pg_stat_statements"].startswith("ok")
    assert "the other state store items: no connection" in out
    assert "pw-9x" not in out


def test_routes_reachable_and_not_without_showing_paths_or_secrets(env, httpserver, monkeypatch,
                                                                   capsys):  # fmt: skip
    httpserver.expect_request("/", method="HEAD").respond_with_data("", status=405)
    closed = free_port()
    routes = [
        {"name": "team", "type": "slack", "url": httpserver.url_for("/services/T0/B0/s3cr3t")},
        {"name": "pager", "type": "webhook", "url": f"http://127.0.0.1:{closed}/hook-path?token=abc123",
         "headers": {"Authorization": "Bearer hdr-secret"}},
        {"name": "local", "type": "console"},
    ]  # fmt: skip
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps(routes))
    code, out, err = run_cli(capsys, "doctor", "--routes")
    assert code == 2, out + err
    items = lines_by_name(out)
    assert items["route.team"].startswith("ok")
    origin = f"http://{httpserver.host}:{httpserver.port}"
    assert f"slack: {origin} answers (HTTP 405)" in items["route.team"]
    assert items["route.local"].startswith("ok")
    assert problems(out).keys() == {"route.pager"}
    pager = items["route.pager"]
    assert f"webhook: cannot reach http://127.0.0.1:{closed}" in pager
    assert "dq-monitor alerts test --route pager" in pager
    for secret in ("s3cr3t", "/services", "token", "abc123", "hook-path", "hdr-secret"):
        assert secret not in out + err
    # Only the origin was asked, and only with HEAD: nothing was delivered.
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("HEAD", "/")]
    assert httpserver.log[0][0].headers["User-Agent"] == f"dq-monitor/{__version__}"
    assert out.rstrip().endswith("doctor: 1 problem")


def test_help_says_where_settings_come_from_and_config_check_stays_offline(capsys):
    with pytest.raises(SystemExit):
        run_cli(capsys, "doctor", "--help")
    text = capsys.readouterr().out
    for expected in ("DQ_DATABASE_URL", "--config", "DQ_CONFIG", "example:", "dq-monitor doctor"):
        assert expected in text
    with pytest.raises(SystemExit):
        run_cli(capsys, "config", "check", "--help")
    text = capsys.readouterr().out
    assert "offline" in text
    assert "does not connect" in text
    assert "dq-monitor doctor" in text


def test_state_schema_versions_older_is_ok_newer_is_a_problem(env, db, capsys):
    code, _, err = run_cli(capsys, "check")
    assert code == 0, err
    db.execute("DELETE FROM dq_monitor.schema_version WHERE version = %s", (LATEST,))
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0, out
    line = lines_by_name(out)["state.schema_version"]
    older = f"version {LATEST - 1}; this build expects {LATEST} and upgrades it at its first"
    assert older in line
    top = db.execute("SELECT max(version) FROM dq_monitor.schema_version").fetchone()[0]
    assert top == LATEST - 1
    db.execute("INSERT INTO dq_monitor.schema_version (version, description) VALUES (%s, 'x')",
               (LATEST,))  # fmt: skip
    db.execute("INSERT INTO dq_monitor.schema_version (version, description) VALUES (99, 'y')")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 2
    line = problems(out)["state.schema_version"]
    assert f"version 99, newer than this build understands ({LATEST})" in line
    assert "hint: deploy the dq-monitor release that upgraded the schema" in line
