"""Several monitored databases end to end: one App each, one state store, their own schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from pytest_httpserver import HTTPServer

from config import load_settings
from monitor.fleet import Fleet
from tests.factories import healthy_run, seed_race
from tests.helpers import FakeClock, run_cli, run_json


@pytest.fixture
def us_url(pg_server) -> Iterator[str]:
    """A second monitored database on the same server."""
    name, url = pg_server.create_database()
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def two(monkeypatch, db_url, db, us_url) -> psycopg.Connection:
    """eu (the test's database, which also holds the state) has the race; us is clean."""
    monkeypatch.setenv("DQ_DATABASES", json.dumps([
        {"name": "eu", "url": db_url}, {"name": "us", "url": us_url},
    ]))  # fmt: skip
    monkeypatch.setenv("DQ_SETTLE_TIME", "0s")
    seed_race(db, "race")
    with psycopg.connect(us_url, autocommit=True) as us:
        healthy_run(us, "fine")
    return db


def test_each_database_is_checked_into_its_own_schema_and_alerts_carry_it(
    monkeypatch, two, us_url, httpserver: HTTPServer
):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    route = {"name": "hook", "type": "webhook", "url": httpserver.url_for("/hook")}
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([route]))
    with psycopg.connect(us_url, autocommit=True) as us:
        seed_race(us, "race_us")  # the same defect on both: two alerts, not one
    fleet = Fleet.open(load_settings(), clock=FakeClock())
    try:
        assert list(fleet.apps) == ["eu", "us"]
        assert all(app.store.source is fleet.state for app in fleet)
        assert [app.store.schema for app in fleet] == ["dq_monitor_eu", "dq_monitor_us"]
        results = {app.database: app.pipeline.run(["dashboard_mismatch"]).results for app in fleet}
    finally:
        fleet.close()
    assert [r.violations for r in results["eu"]] == [1]
    assert [r.violations for r in results["us"]] == [1]
    # Both schemas live in the state database (the first database's), one run each.
    for schema, run_id in (("dq_monitor_eu", "race"), ("dq_monitor_us", "race_us")):
        samples = two.execute(
            f"SELECT samples FROM {schema}.check_runs WHERE check_name = 'dashboard_mismatch'"
        ).fetchall()
        assert [s[0][0]["run_id"] for s in samples] == [run_id]
    bodies = [json.loads(request.get_data()) for request, _ in httpserver.log]
    labels = sorted(body["alerts"][0]["labels"]["database"] for body in bodies)
    assert labels == ["eu", "us"]
    prints = {b["alerts"][0]["labels"]["database"]: b["alerts"][0]["fingerprint"] for b in bodies}
    assert prints["eu"] != prints["us"]
    assert "dashboard_mismatch (database eu)" in next(
        b["alerts"][0]["annotations"]["summary"] for b in bodies
        if b["alerts"][0]["labels"]["database"] == "eu"
    )  # fmt: skip


def test_check_runs_every_database_and_json_names_each(two, capsys):
    code, payload = run_json(capsys)
    assert code == 1  # the worst: eu's violations
    found = {(r["database"], r["check"]): r["violations"] for r in payload["results"]}
    assert found[("eu", "dashboard_mismatch")] == 1
    assert found[("us", "dashboard_mismatch")] == 0
    assert {d for d, _ in found} == {"eu", "us"}


def test_check_database_runs_one_and_the_table_names_the_database(two, capsys):
    code, payload = run_json(capsys, "--database", "us")
    assert code == 0
    assert {r["database"] for r in payload["results"]} == {"us"}
    code, out, _ = run_cli(capsys, "check", "--database", "eu", "--check", "dashboard_mismatch")
    assert code == 1
    assert out.splitlines()[0].split()[:2] == ["DATABASE", "CHECK"]
    assert "eu/dashboard_mismatch (1 violation)" in out


def test_an_unknown_database_is_one_line_listing_the_names(two, capsys):
    code, out, err = run_cli(capsys, "check", "--database", "asia")
    assert (code, out) == (2, "")
    assert err.strip() == "dq-monitor: error: unknown database 'asia'; databases: eu, us"


@pytest.mark.parametrize("command", [["gate"], ["migrate", "--apply", "--operator", "me"],
                                     ["silence", "list"]])  # fmt: skip
def test_one_database_commands_need_database_when_there_are_several(two, capsys, command):
    code, _, err = run_cli(capsys, *command)
    assert code == 2
    assert err.strip() == (
        "dq-monitor: error: several databases are configured (eu, us); choose one with "
        "--database NAME"
    )


def test_gate_names_its_database_and_prune_covers_every_schema(two, capsys):
    code, out, _ = run_cli(capsys, "gate", "--database", "us", "--format", "json")
    assert code in (0, 1, 4)
    assert json.loads(out)["database"] == "us"
    run_json(capsys)  # both schemas exist now
    code, out, _ = run_cli(capsys, "state", "prune")
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == ["database eu", "database us"]


def test_a_silence_belongs_to_its_database(two, capsys):
    code, out, _ = run_cli(capsys, "silence", "add", "dashboard_mismatch", "--for", "1h",
                           "--reason", "known", "--database", "eu")  # fmt: skip
    assert code == 0
    assert out.startswith("silenced: ")
    assert run_cli(capsys, "silence", "list", "--database", "us")[1] == "no active silences\n"
    code, out, _ = run_cli(capsys, "silence", "list", "--database", "eu")
    assert "dashboard_mismatch" in out


def test_doctor_names_every_databases_items(two, capsys):
    _, out, _ = run_cli(capsys, "doctor", "--format", "json")
    names = [item["name"] for item in json.loads(out)["items"]]
    assert "eu/database.connection" in names or "eu/database.server_version" in names
    assert any(n.startswith("us/") for n in names)
    assert all(n.split("/")[0] in {"eu", "us"} for n in names)


def test_migrate_dry_run_names_its_database(two, capsys):
    code, out, _ = run_cli(capsys, "migrate", "--database", "us")
    assert code == 0
    assert out.splitlines()[0] == "database: us"


def test_an_unreachable_database_is_named_by_its_entry_and_the_others_still_run(
    monkeypatch, db_url, db, capsys
):
    from monitor.demo.embedded import free_port

    gone = f"postgresql://dq@127.0.0.1:{free_port()}/gone"
    monkeypatch.setenv("DQ_DATABASES", json.dumps([
        {"name": "eu", "url": db_url}, {"name": "gone", "url": gone},
    ]))  # fmt: skip
    monkeypatch.setenv("DQ_CONNECT_TIMEOUT", "2s")
    healthy_run(db, "fine")
    code, out, err = run_cli(capsys, "check", "--format", "json", "--check", "stale_partitions")
    assert code == 3  # the worst: a database cannot be reached
    status = {r["database"]: r["status"] for r in json.loads(out)["results"]}
    assert status == {"eu": "ok", "gone": "error"}
    assert "databases[gone].url" in err
    assert "DQ_DATABASE_URL" not in err


def test_one_slack_webhook_is_paced_once_for_every_database(
    monkeypatch, two, us_url, httpserver: HTTPServer
):
    httpserver.expect_request("/slack").respond_with_data("ok")
    route = {"name": "slack", "type": "slack", "url": httpserver.url_for("/slack")}
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([route]))
    with psycopg.connect(us_url, autocommit=True) as us:
        seed_race(us, "race_us")
    clock = FakeClock()
    fleet = Fleet.open(load_settings(), clock=clock)
    try:
        for app in fleet:  # each cycle delivers its database's one message
            delivery = app.pipeline.run(["dashboard_mismatch"]).delivery
            assert delivery is not None
            assert delivery.sent == 1
    finally:
        fleet.close()
    assert len(httpserver.log) == 2
    assert clock.slept == [pytest.approx(1.0)]  # us waited for eu's post to the same webhook


def test_config_check_counts_the_databases(two, capsys):
    code, out, _ = run_cli(capsys, "config", "check")
    assert code == 0
    assert out.strip().endswith(", 2 databases")
