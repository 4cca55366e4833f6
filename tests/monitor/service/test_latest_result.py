"""`/api/checks/<check>/latest` over real HTTP: the latest result and its samples, or a 404."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from monitor.service.http import Endpoints, HttpServer
from monitor.service.latest_result import check_in_path
from tests.monitor.service.page_state import page_state

MIN = dt.timedelta(minutes=1)


@contextmanager
def serving(endpoints: Endpoints) -> Iterator[int]:
    server = HttpServer(endpoints, "127.0.0.1", 0)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def get(port: int, path: str) -> tuple[int, str, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.load(exc)


def test_latest_results_of_each_status_with_their_samples(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db, DQ_SAMPLE_LIMIT="2") as state:
        state.ok("rows_ok", 0, 10 * MIN)
        state.ok("dashboard_mismatch", 3, 3 * MIN, samples=5)
        state.ok("flag_conflict", 1, 9 * MIN)
        state.error("flag_conflict", "the monitored database went away", 2 * MIN)
        with serving(state.endpoints()) as port:
            ok = get(port, "/api/checks/rows_ok/latest")
            violations = get(port, "/api/checks/dashboard_mismatch/latest")
            error = get(port, "/api/checks/flag_conflict/latest?database=default")
            never = get(port, "/api/checks/stale_partitions/latest")
        now = state.now
    assert ok[:2] == (200, "application/json")
    assert ok[2]["status"] == "ok"
    assert ok[2]["violations"] == 0
    assert ok[2]["samples"] == []
    assert ok[2]["severity"] == "warning"
    assert ok[2]["error"] is None
    assert dt.datetime.fromisoformat(ok[2]["finished_at"]) == now - 10 * MIN
    started = dt.datetime.fromisoformat(ok[2]["started_at"])
    assert started == now - 10 * MIN - dt.timedelta(seconds=1)
    body = violations[2]
    assert body["status"] == "violation"
    assert body["violations"] == 3
    assert body["severity"] == "critical"
    assert body["database"] == "default"
    assert body["samples"] == [{"run_id": "r0", "note": "sample 0"},
                               {"run_id": "r1", "note": "sample 1"}]  # fmt: skip
    assert body["sample_limit"] == 2  # capped as the store records them
    assert error[0] == 200
    assert error[2]["status"] == "error"
    assert error[2]["violations"] is None
    assert error[2]["error"] == "the monitored database went away"
    assert error[2]["error_kind"] == "failed"
    assert dt.datetime.fromisoformat(error[2]["last_success_at"]) == now - 9 * MIN
    assert never[0] == 200
    assert never[2]["status"] == "not_run"
    assert never[2]["samples"] == []


def test_unknown_checks_and_databases_are_404_with_one_line(monkeypatch, db_url, db):
    with page_state(monkeypatch, db_url, db) as state:
        single = state.endpoints()
        several = state.endpoints({"eu": state.view(), "us": state.view()})
        with serving(single) as port:
            unknown = get(port, "/api/checks/nope/latest")
            database = get(port, "/api/checks/rows_ok/latest?database=mars")
        with serving(several) as port:
            missing = get(port, "/api/checks/rows_ok/latest")
            named = get(port, "/api/checks/rows_ok/latest?database=us")
    assert unknown[:2] == (404, "application/json")
    assert unknown[2]["error"].startswith("unknown check 'nope' in database 'default'; the "
                                          "checks are: dashboard_mismatch, ")  # fmt: skip
    assert database[0] == 404
    assert database[2] == {"error": "unknown database 'mars'; the databases are: default"}
    assert missing[0] == 400
    assert missing[2] == {
        "error": "several databases are monitored: add ?database=NAME (one of eu, us)"
    }
    assert named[0] == 200
    assert named[2]["database"] == "us"
    for body in (unknown[2], database[2], missing[2]):
        assert "\n" not in body["error"]


def test_the_check_is_read_from_the_path():
    assert check_in_path("/api/checks/rows_ok/latest") == "rows_ok"
    assert check_in_path("/api/checks//latest") is None
    assert check_in_path("/api/checks/rows_ok") is None
    assert check_in_path("/metrics") is None
