"""An alertmanager route end to end: the outbox, re-sends while firing, resolve, `alerts test`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from alerts import SystemClock, label_fingerprint
from config import load_settings
from monitor.doctor.items import ItemStatus
from monitor.doctor.routes import route_items
from monitor.store import Silences
from tests.factories import add_worker, ago, seed_race
from tests.helpers import FakeClock, run_cli
from tests.monitor.test_alert_delivery import open_app
from tests.plugins.alertmanager import wait_for

LABELS = {"alertname": "DqCriticalCheckViolations", "database": "default",
          "check": "dashboard_mismatch", "severity": "critical"}  # fmt: skip


def am_route(*urls: str, **extra) -> dict:
    return {"name": "am", "type": "alertmanager", "urls": list(urls), **extra}


def rfc3339(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.alertmanager_clock
def test_resends_keep_the_alert_active_and_the_resolved_message_resolves_it(
    monkeypatch, db_url, db, alertmanager, httpserver
):
    # The real clock: Alertmanager compares our endsAt with its own time.
    app = open_app(monkeypatch, db_url, SystemClock(),
                   [am_route(alertmanager.url, resend_interval="1s")])  # fmt: skip
    try:
        seed_race(db, "race")
        app.pipeline.run(("dashboard_mismatch",))
        first = wait_for("the alert", lambda: alertmanager.alert(LABELS["alertname"],
                                                                 "dashboard_mismatch"))
        assert first["labels"] == LABELS
        assert first["fingerprint"] == label_fingerprint(LABELS)
        first_end = rfc3339(first["endsAt"])
        assert first_end - rfc3339(first["startsAt"]) <= dt.timedelta(seconds=5)

        def past_first_end():
            app.deliver()  # what the service's delivery loop does every delivery_interval
            return dt.datetime.now(dt.UTC) > first_end + dt.timedelta(seconds=1)

        wait_for("the first endsAt to pass", past_first_end)
        alive = alertmanager.alert("DqCriticalCheckViolations", "dashboard_mismatch")
        assert alive is not None  # without re-sends Alertmanager would have resolved it
        assert rfc3339(alive["endsAt"]) > first_end

        add_worker(db, "race", 2, "failed", started_at=ago(seconds=1))
        app.pipeline.run(("dashboard_mismatch",))  # clean: the resolved message goes out
        wait_for("Alertmanager to resolve it", lambda: alertmanager.alerts() == [])
        now = dt.datetime.now(dt.UTC)
        assert app.store.firing_alerts.to_resend("am", now, now) == []

        def statuses():
            found = [json.loads(r.get_data()) for r, _ in httpserver.log]
            return found if found and found[-1]["status"] == "resolved" else None

        received = wait_for("Alertmanager's resolved notification", statuses)
        assert received[0]["status"] == "firing"
        for body in received:
            assert body["commonLabels"] == LABELS
            assert [a["fingerprint"] for a in body["alerts"]] == [label_fingerprint(LABELS)]
    finally:
        app.close()


class FakeAlertmanagers:
    """A loopback HTTP server standing in for two Alertmanagers (two path prefixes): it
    records each POST to /api/v2/alerts and answers `status`."""

    def __init__(self, httpserver: HTTPServer) -> None:
        self.status = 200
        self.posts: list[tuple[str, list[dict]]] = []
        for prefix in ("/am0", "/am1"):
            expected = httpserver.expect_request(f"{prefix}/api/v2/alerts", method="POST")
            expected.respond_with_handler(self._answer)
        self.urls = [httpserver.url_for("/am0"), httpserver.url_for("/am1")]

    def _answer(self, request: Request) -> Response:
        self.posts.append((request.path.split("/")[1], json.loads(request.get_data())))
        return Response("", status=self.status)

    def take(self) -> list[tuple[str, list[str]]]:
        """The POSTs since the last take: which Alertmanager, and the checks of its alerts."""
        taken = [(am, sorted(a["labels"]["check"] for a in body)) for am, body in self.posts]
        self.posts.clear()
        return taken


def test_a_resend_is_one_post_per_alertmanager_and_interval_with_all_firing_alerts(
    monkeypatch, db_url, db, httpserver
):
    ams = FakeAlertmanagers(httpserver)
    clock = FakeClock()
    app = open_app(monkeypatch, db_url, clock, [am_route(*ams.urls)])
    both = ("dashboard_mismatch", "missing_worker_runs")
    try:
        seed_race(db, "race")
        app.pipeline.run(both)  # dashboard_mismatch fires; missing_worker_runs (warning) pends
        # The outbox posts the firing message to each; the re-send of the same cycle leaves
        # out what was just posted.
        assert ams.take() == [("am0", ["dashboard_mismatch"]), ("am1", ["dashboard_mismatch"])]
        clock.advance(seconds=59)
        assert app.resender.resend_due() == 0  # the interval (1m) is not up
        assert ams.take() == []
        app.pipeline.run(both)  # now missing_worker_runs fires too, through the outbox
        assert ams.take() == [("am0", ["missing_worker_runs"]), ("am1", ["missing_worker_runs"])]
        clock.advance(minutes=1, seconds=1)
        assert app.resender.resend_due() == 2
        assert ams.take() == [("am0", list(both)), ("am1", list(both))]
        Silences(app.store, app.settings).add("missing_worker_runs", dt.timedelta(hours=1),
                                              "maintenance", "test", clock.now())  # fmt: skip
        clock.advance(minutes=1)
        app.resender.resend_due()
        assert ams.take() == [("am0", ["dashboard_mismatch"]), ("am1", ["dashboard_mismatch"])]
    finally:
        app.close()


def test_a_resend_carries_endsat_four_intervals_ahead(monkeypatch, db_url, db, httpserver):
    ams = FakeAlertmanagers(httpserver)
    clock = FakeClock()
    app = open_app(monkeypatch, db_url, clock, [am_route(ams.urls[0], resend_interval="30s")])
    try:
        seed_race(db, "race")
        app.pipeline.run(("dashboard_mismatch",))
        ams.posts.clear()
        clock.advance(seconds=31)  # the interval is up, and the firing message older than it
        assert app.resender.resend_due() == 1
        [(_, [alert])] = ams.posts
        assert alert["labels"] == LABELS
        assert rfc3339(alert["endsAt"]) == clock.now() + dt.timedelta(minutes=2)
        assert rfc3339(alert["startsAt"]) < clock.now()  # when it started firing
    finally:
        app.close()


def test_an_alert_with_a_message_still_pending_is_not_resent(monkeypatch, db_url, db, httpserver):
    ams = FakeAlertmanagers(httpserver)
    ams.status = 503  # the firing message stays in the outbox, to be retried
    clock = FakeClock()
    app = open_app(monkeypatch, db_url, clock, [am_route(ams.urls[0])])
    try:
        seed_race(db, "race")
        app.pipeline.run(("dashboard_mismatch",))
        assert ams.take() == [("am0", ["dashboard_mismatch"])]  # the outbox's attempt only
        status = db.execute("SELECT status FROM dq_monitor.alert_outbox").fetchall()
        assert status == [("pending",)]
        clock.advance(minutes=1)
        assert app.resender.resend_due() == 0
        assert ams.take() == []
    finally:
        app.close()


@pytest.mark.alertmanager_clock
def test_alerts_test_and_doctor_reach_a_real_alertmanager(
    monkeypatch, db_url, alertmanager, httpserver, capsys
):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([am_route(alertmanager.url)]))
    code, out, err = run_cli(capsys, "alerts", "test", "--route", "am")
    assert code == 0, err
    assert out.strip() == "route am (alertmanager): delivered (HTTP 200)"
    received = 'alertmanager_alerts_received_total{status="resolved",version="v2"}'
    assert alertmanager.metric(received) == 1
    assert alertmanager.alerts() == []  # over on arrival: nothing to notify
    port = alertmanager.port
    [item] = route_items(load_settings())
    assert (item.name, item.status) == ("route.am", ItemStatus.OK)
    assert item.detail == f"alertmanager: http://127.0.0.1:{port} is ready (HTTP 200)"
    alertmanager.stop()
    [down] = route_items(load_settings())
    assert (down.name, down.status) == ("route.am", ItemStatus.PROBLEM)
    assert down.detail.startswith(f"alertmanager: cannot reach http://127.0.0.1:{port}")
