"""`dq-monitor doctor` on a database's standbys: reachable, really a standby, pgss readable."""

from __future__ import annotations

import json

import psycopg

from monitor.demo.embedded import free_port
from tests.helpers import run_cli
from tests.plugins.standby import StandbyPair


def doctor(capsys, monkeypatch, primary: str, *standbys: str) -> tuple[int, dict[str, dict]]:
    monkeypatch.setenv("DQ_DATABASES", json.dumps(
        [{"name": "default", "url": primary, "standby_urls": list(standbys)}]
    ))  # fmt: skip
    code, out, err = run_cli(capsys, "doctor", "--format", "json")
    assert out, err
    return code, {item["name"]: item for item in json.loads(out)["items"]}


def test_a_streaming_standby_with_the_extension_is_ok(standby_pair: StandbyPair, standby_db,
                                                      capsys, monkeypatch):  # fmt: skip
    with psycopg.connect(standby_pair.primary_url(standby_db), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    standby_pair.wait_for_replay()
    prefix = f"standby.{standby_pair.standby_address}"
    _, items = doctor(capsys, monkeypatch, standby_pair.primary_url(standby_db),
                      standby_pair.standby_url(standby_db))  # fmt: skip
    assert items[f"{prefix}.recovery"]["status"] == "ok"
    assert "a hot standby in recovery" in items[f"{prefix}.recovery"]["detail"]
    assert items[f"{prefix}.pg_stat_statements"]["status"] == "ok", items


def test_the_primary_listed_as_a_standby_and_an_unreachable_one_are_problems(
    standby_pair: StandbyPair, standby_db, capsys, monkeypatch
):
    primary = standby_pair.primary_url(standby_db)
    gone = f"postgresql://dq:s3cr3t@127.0.0.1:{free_port()}/{standby_db}"
    code, items = doctor(capsys, monkeypatch, primary, primary, gone)
    assert code == 2
    address = f"127.0.0.1:{standby_pair.primary.port}"
    not_standby = items[f"standby.{address}.recovery"]
    assert (not_standby["status"], not_standby["detail"]) == (
        "problem", "is not a standby (pg_is_in_recovery() is false)"
    )  # fmt: skip
    unreachable = [i for n, i in items.items() if n.endswith(".connection")]
    assert [i["status"] for i in unreachable] == ["problem"]
    assert "reader evidence stays unknown" in unreachable[0]["hint"]
    assert "s3cr3t" not in json.dumps(items)
