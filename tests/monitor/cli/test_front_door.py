"""The front door: global options, errors that name what the user set, one line, exit codes."""

from __future__ import annotations

import psycopg
import pytest

from monitor.demo.embedded import free_port
from tests.factories import seed_race
from tests.helpers import run_cli


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# --- --config is one option, before or after the subcommand --------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "/nonexistent/dq.toml", "config", "check"],
        ["config", "check", "--config", "/nonexistent/dq.toml"],
        ["config", "--config", "/nonexistent/dq.toml", "check"],
    ],
)
def test_config_file_is_honoured_before_or_after_the_subcommand(capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, out + err
    assert "config file /nonexistent/dq.toml does not exist" in err
    assert "configuration ok" not in out


@pytest.mark.parametrize("before", [True, False])
def test_routes_of_the_config_file_reach_alerts_test_in_either_position(
    tmp_path, capsys, db_url, httpserver, before
):
    httpserver.expect_request("/hook").respond_with_data("ok")
    config = tmp_path / "routes.toml"
    hook = httpserver.url_for("/hook")
    config.write_text(
        f'database_url = "{db_url}"\n'
        f'[[alerts.routes]]\nname = "team"\ntype = "webhook"\nurl = "{hook}"\n'
    )
    argv = ["--config", str(config), "alerts", "test"] if before else [
        "alerts", "test", "--config", str(config)]  # fmt: skip
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, out + err
    assert "team" in out
    assert len(httpserver.log) == 1


def test_a_later_config_option_wins_over_an_earlier_one(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text('log_level = "INFO"\n')
    code, _, err = run_cli(capsys, "--config", "/nonexistent.toml", "config", "check",
                           "--config", str(good))  # fmt: skip
    assert "does not exist" not in err
    assert code in (0, 2)  # 2 only for the missing database URL
    assert "database_url: required" in err or code == 0


# --- errors name the variable the user set --------------------------------------------------


def test_unreachable_monitored_database_names_dq_database_url_only(monkeypatch, capsys):
    monkeypatch.setenv("DQ_DATABASE_URL", f"postgresql://dq:pw-9Xq@127.0.0.1:{free_port()}/jobs")
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "2s")
    for argv in (["check"], ["gate"], ["silence", "list"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 3, (argv, err)
        assert "DQ_DATABASE_URL is right" in err
        assert "DQ_STATE_DATABASE_URL" not in err
        assert "pw-9Xq" not in out + err
        assert len(_lines(err)) == 1, err


def test_a_separate_state_store_is_named_by_its_own_variable(monkeypatch, capsys, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_STATE_DATABASE_URL", f"postgresql://dq@127.0.0.1:{free_port()}/st")
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "2s")
    code, _, err = run_cli(capsys, "check")
    assert code == 3
    assert "DQ_STATE_DATABASE_URL is right" in err


@pytest.mark.parametrize(
    "url",
    ["postgresql://[x", "postgresql://127.0.0.1:1/db?sslmode=sometimes", "host=127.0.0.1 port=x"],
)
def test_a_malformed_url_names_dq_database_url(monkeypatch, capsys, url):
    monkeypatch.setenv("DQ_DATABASE_URL", url)
    code, _, err = run_cli(capsys, "check")
    assert code == 2
    assert "DQ_DATABASE_URL is not a valid PostgreSQL URL" in err
    assert "DQ_STATE_DATABASE_URL" not in err
    assert len(_lines(err)) == 1


def test_a_key_value_connection_string_never_shows_its_password(monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv(
        "DQ_DATABASE_URL", f"host=127.0.0.1 port={port} user=u password=S3cretKV dbname=jobs"
    )
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "2s")
    code, out, err = run_cli(capsys, "check")
    assert code == 3
    assert "S3cretKV" not in out + err
    assert f"127.0.0.1:{port}/jobs" in err


# --- missing objects and grants: exit 2, one line each, a pointer to the fix ----------------


@pytest.fixture
def empty_db(pg_server):
    name, url = pg_server.create_database(schema=False)
    yield url
    pg_server.drop_database(name)


def test_missing_job_tables_exit_2_with_each_problem_once(monkeypatch, capsys, empty_db):
    monkeypatch.setenv("DQ_DATABASE_URL", empty_db)
    code, _, err = run_cli(capsys, "check")
    assert code == 2
    lines = _lines(err)
    assert len(lines) == len(set(lines)), err
    assert all("does not exist (SQLSTATE 42P01)" in line for line in lines), err
    # A missing table is a wrong setting, never evidence that the columns were dropped.
    for argv in (["gate"], ["migrate", "--apply", "--operator", "ci"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert len(_lines(err)) == 1, err
        assert '"public"."run_metadata" does not exist' in err
        assert "Configuration" in err


@pytest.fixture
def limited_role(db, db_url):
    """A login role that may read the job tables but has no right on the state schema."""
    db.execute("DROP ROLE IF EXISTS dq_limited")
    db.execute("CREATE ROLE dq_limited LOGIN")
    db.execute("GRANT SELECT ON run_metadata, partition_progress, worker_runs TO dq_limited")
    yield psycopg.conninfo.make_conninfo(db_url, user="dq_limited")
    db.execute("DROP OWNED BY dq_limited CASCADE")
    db.execute("DROP ROLE dq_limited")


def test_no_rights_on_the_state_schema_exit_2_and_point_to_the_grants(
    monkeypatch, capsys, db, db_url, limited_role
):
    # The owner creates the schema; the monitor's role then cannot use it.
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    assert run_cli(capsys, "check", "--no-alerts")[0] == 0
    monkeypatch.setenv("DQ_DATABASE_URL", limited_role)
    for argv in (["check"], ["gate"], ["silence", "list"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert "permission denied" in err
        assert "Database grants" in err
        assert "Traceback" not in err
        assert len(_lines(err)) == 1, err


def test_a_store_query_failing_after_connecting_is_translated(monkeypatch, capsys, db, db_url):
    """The connection opens, the schema is current, then one table's query fails."""
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    assert run_cli(capsys, "check", "--no-alerts")[0] == 0
    db.execute("DROP TABLE dq_monitor.alert_outbox")
    seed_race(db, "race")
    code, _, err = run_cli(capsys, "check")
    assert code == 2, err
    assert "alert_outbox" in err
    assert "Traceback" not in err
    assert len(_lines(err)) == 1, err
    code, _, err = run_cli(capsys, "silence", "list")
    assert code == 0, err  # silences do not need the outbox


def test_the_migration_session_translates_every_psycopg_error(monkeypatch, db_url):
    """Whatever fails on the owner's session (a lock, the drop, a catalog read) leaves it as
    one of ours, so `migrate` prints one line with an exit code, never a traceback."""
    from alerts import SystemClock
    from config import QueryFailed, SetupError, load_settings
    from monitor.app import App
    from monitor.gate.migration import Migrator
    from monitor.gate.plans import make_plan

    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    settings = load_settings()
    app = App.open(settings, clock=SystemClock(), alerts=False)
    try:
        migrator = Migrator(app.settings, app.store, app.primary, app.clock,
                            make_plan(settings, None), progress=lambda line: None)
        with pytest.raises(SetupError, match=r"42P01.*Configuration"), migrator._connect() as c:
            c.execute("SELECT * FROM no_such_table")
        with pytest.raises(QueryFailed, match="division by zero"), migrator._connect() as c:
            c.execute("SELECT 1 / 0")
    finally:
        app.close()
