"""Alerts end to end on a real database and real HTTP receivers, with an injected clock."""

from __future__ import annotations

import json
import logging

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from config import load_settings
from monitor.app import App
from tests.factories import add_worker, ago, seed_race
from tests.helpers import FakeClock

SECRET_PATH = "/hooks/T000/B000/s3cr3t-token"
DELIVERY_COUNTERS = (
    "dq_alert_messages_delivered_total",
    "dq_alert_delivery_retries_total",
    "dq_alert_messages_dead_total",
)


@pytest.fixture
def clock():
    return FakeClock()


def open_app(monkeypatch, db_url, clock, routes, **env):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps(routes))
    monkeypatch.setenv("DQ_SETTLE_TIME", "0s")
    for key, value in env.items():
        monkeypatch.setenv(f"DQ_{key.upper()}", value)
    return App.open(load_settings(), clock=clock)


def webhook(httpserver: HTTPServer, **extra):
    return {"name": "hook", "type": "webhook", "url": httpserver.url_for(SECRET_PATH), **extra}


def cycle(app, *names):
    done = app.pipeline.run(names or ("dashboard_mismatch",))  # the cycle delivers, as `check`
    return list(done.results), done.delivery


def bodies(httpserver):
    return [json.loads(req.get_data()) for req, _ in httpserver.log]


def outbox(db):
    return db.execute(
        "SELECT kind, status, attempts, last_error FROM dq_monitor.alert_outbox ORDER BY id"
    ).fetchall()


def test_first_alert_no_duplicate_reminder_and_resolved(monkeypatch, db_url, db, clock, httpserver):
    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        cycle(app)
        cycle(app)  # still failing: no second message
        assert [b["status"] for b in bodies(httpserver)] == ["firing"]
        first = bodies(httpserver)[0]
        assert first["version"] == "4"
        assert first["alerts"][0]["labels"]["check"] == "dashboard_mismatch"
        req = httpserver.log[0][0]
        assert req.headers["Idempotency-Key"].endswith("-firing-1")
        clock.advance(hours=4)
        cycle(app)
        assert len(httpserver.log) == 2
        assert "still failing" in bodies(httpserver)[1]["alerts"][0]["annotations"]["summary"]
        add_worker(db, "race", 2, "failed", started_at=ago(seconds=1))
        cycle(app)
        statuses = [b["status"] for b in bodies(httpserver)]
        assert statuses == ["firing", "firing", "resolved"]
        assert [k for k, *_ in outbox(db)] == ["firing", "reminder", "resolved"]
    finally:
        app.close()


def test_500_then_success_is_delivered_once(monkeypatch, db_url, db, clock, httpserver):
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("rollup_error", status=500)
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        _, report = cycle(app)
        assert (report.sent, report.retried) == (0, 1)
        assert app.outbox.deliver_due().sent == 0  # backing off: not due yet
        clock.advance(seconds=3)  # past the first backoff (2s x jitter 0.5..1)
        assert app.outbox.deliver_due().sent == 1
        assert app.outbox.deliver_due().sent == 0
        assert len(httpserver.log) == 2
        assert outbox(db) == [("firing", "sent", 2, None)]
    finally:
        app.close()


def test_429_retry_after_is_honoured(monkeypatch, db_url, db, clock, httpserver):
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "120"})
    )
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        _, report = cycle(app)
        assert report.retried == 1
        assert "retrying in 120.0s" in report.lines[0]
        clock.advance(seconds=119)
        assert app.outbox.deliver_due().sent == 0
        assert len(httpserver.log) == 1
        clock.advance(seconds=1)
        assert app.outbox.deliver_due().sent == 1
    finally:
        app.close()


def test_410_is_dead_lettered_with_its_reason(monkeypatch, db_url, db, clock, httpserver, caplog):
    httpserver.expect_request(SECRET_PATH).respond_with_data("channel_is_archived", status=410)
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        with caplog.at_level(logging.ERROR):
            _, report = cycle(app)
        assert report.dead == 1
        assert outbox(db) == [("firing", "dead", 1, "HTTP 410: channel_is_archived")]
        assert "marked dead" in caplog.text
        clock.advance(hours=1)
        assert app.outbox.deliver_due().sent == 0
        assert len(httpserver.log) == 1  # never retried
        stats = db.execute(
            "SELECT sent_total, failed_total, dead_total FROM dq_monitor.delivery_stats"
        ).fetchone()
        assert stats == (0, 0, 1)
        assert delivery_counters(app) == (0, 0, 1)  # the metrics say what the store counted
    finally:
        app.close()


def delivery_counters(app):
    """(delivered, retries, dead) of route "hook" as /metrics exports them."""
    from monitor.service.metrics import StatsCache, build_registry, one_database

    cache = StatsCache(app.store, app.clock)
    assert cache.refresh()
    registry = build_registry(app.settings, one_database(app.settings, cache, lambda: True))
    hook = {"database": "default", "route": "hook"}
    return tuple(registry.get_sample_value(name, hook) for name in DELIVERY_COUNTERS)


def test_slack_route_is_paced_to_one_message_per_second(monkeypatch, db_url, db, clock, httpserver):
    httpserver.expect_request("/slack").respond_with_data("ok")
    route = {"name": "slack", "type": "slack", "url": httpserver.url_for("/slack"),
             "min_severity": "info"}  # fmt: skip
    app = open_app(monkeypatch, db_url, clock, [route], alerts__warning_after="1")
    try:
        seed_race(db, "race")  # dashboard_mismatch and missing_worker_runs both fire
        report = app.pipeline.run(["dashboard_mismatch", "missing_worker_runs"]).delivery
        assert report is not None
        assert report.sent == 2
        assert clock.slept
        assert clock.slept[-1] == pytest.approx(1.0)
        payload = bodies(httpserver)[0]
        assert payload["text"]
        assert payload["blocks"][0]["type"] == "header"
    finally:
        app.close()


def test_route_filters_severity_and_checks(monkeypatch, db_url, db, clock, httpserver):
    httpserver.expect_request(SECRET_PATH).respond_with_data("ok")
    routes = [
        webhook(httpserver, name="critical-only", min_severity="critical"),
        webhook(httpserver, name="conflicts", checks=["flag_conflict"], min_severity="info"),
    ]
    app = open_app(monkeypatch, db_url, clock, routes, alerts__warning_after="1")
    try:
        seed_race(db, "race")
        app.pipeline.run(["dashboard_mismatch", "missing_worker_runs"])
        sent = [(b["receiver"], b["alerts"][0]["labels"]["check"]) for b in bodies(httpserver)]
        assert sent == [("critical-only", "dashboard_mismatch")]
    finally:
        app.close()


def test_webhook_extra_headers_are_sent(monkeypatch, db_url, db, clock, httpserver):
    httpserver.expect_request(
        SECRET_PATH, headers={"Authorization": "Bearer tok"}
    ).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock,
                   [webhook(httpserver, headers={"Authorization": "Bearer tok"})])  # fmt: skip
    try:
        seed_race(db, "race")
        _, report = cycle(app)
        assert report.sent == 1
    finally:
        app.close()


def test_secrets_never_reach_logs_errors_or_outbox(
    monkeypatch, db_url, db, clock, httpserver, caplog
):
    # The receiver echoes the URL it was called on, and a second route cannot be reached.
    httpserver.expect_request(SECRET_PATH).respond_with_data(
        f"bad hook {httpserver.url_for(SECRET_PATH)}", status=403
    )
    dead = {"name": "down", "type": "webhook", "url": "http://127.0.0.1:1/hooks/other-s3cr3t",
            "headers": {"Authorization": "Bearer hdr-s3cr3t"}}  # fmt: skip
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver), dead])
    try:
        seed_race(db, "race")
        with caplog.at_level(logging.DEBUG):
            _, report = cycle(app)
        # Everything logged in this process except the test receiver's own access log.
        logged = [r.getMessage() for r in caplog.records if r.name != "werkzeug"]
        assert any("marked dead" in m for m in logged)
        texts = [*logged, *report.lines, *(str(r) for r in outbox(db))]
        for text in texts:
            assert "s3cr3t" not in text
        assert report.dead == 1
        assert report.retried == 1
        assert any("network error" in line for line in report.lines)
    finally:
        app.close()


def test_no_alerts_flag_and_silenced_checks_send_nothing(
    monkeypatch, db_url, db, clock, httpserver
):
    from monitor.store.silences import Silences

    httpserver.expect_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        silence = Silences(app.store, app.settings).add(
            "dashboard_mismatch", dt_hours(2), "known, fixing", "alice", clock.now()
        )
        results, _ = cycle(app)
        assert results[0].violations == 1  # still runs and records
        assert httpserver.log == []
        clock.advance(hours=3)  # the silence has ended: the alert fires now
        cycle(app)
        assert [b["status"] for b in bodies(httpserver)] == ["firing"]
        assert silence.created_by == "alice"
    finally:
        app.close()


def dt_hours(hours):
    import datetime as dt

    return dt.timedelta(hours=hours)


def test_delivery_metrics(monkeypatch, db_url, db, clock, httpserver):
    from monitor.service.metrics import StatsCache, build_registry, one_database

    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("busy", status=503)
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        cache = StatsCache(app.store, app.clock)
        cache.refresh()
        registry = build_registry(app.settings, one_database(app.settings, cache, lambda: True))
        hook = {"database": "default", "route": "hook"}
        for name in DELIVERY_COUNTERS:
            assert registry.get_sample_value(name, hook) == 0, name
        seed_race(db, "race")
        cycle(app)
        cache.refresh()
        assert registry.get_sample_value("dq_alert_outbox_pending", {"database": "default"}) == 1
        clock.advance(seconds=5)
        app.outbox.deliver_due()
        cache.refresh()
        assert registry.get_sample_value("dq_alert_outbox_pending", {"database": "default"}) == 0
        assert registry.get_sample_value("dq_alert_messages_delivered_total", hook) == 1
        assert registry.get_sample_value("dq_alert_delivery_retries_total", hook) == 1
        assert registry.get_sample_value("dq_alert_messages_dead_total", hook) == 0
        count = registry.get_sample_value("dq_alert_delivery_seconds_count", hook)
        assert count == 1
        assert registry.get_sample_value("dq_alert_delivery_seconds_sum", hook) >= 5
    finally:
        app.close()


# --- Retry-After: strict parsing, a cap, and never past max_delivery_age ---------------------


def too_many_requests(httpserver, retry_after):
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": retry_after})
    )


def retry_delay(line):
    """The delay a report line announces ("...; retrying in 1.4s")."""
    return float(line.rsplit("retrying in ", 1)[1].rstrip("s"))


def resolve_race(db):
    add_worker(db, "race", 2, "failed", started_at=ago(seconds=1))


@pytest.mark.parametrize("header", ["1e12", "inf", "nan", "-5", "120.5", "soon"])
def test_429_with_a_malformed_retry_after_backs_off_normally(
    monkeypatch, db_url, db, clock, httpserver, caplog, header
):
    too_many_requests(httpserver, header)
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        with caplog.at_level(logging.WARNING):
            _, report = cycle(app)
        assert report.retried == 1
        # The first attempt's exponential backoff: 2 s times a jitter of 0.5 to 1.
        assert 1.0 <= retry_delay(report.lines[0]) <= 2.0
        (due,) = db.execute("SELECT next_attempt_at FROM dq_monitor.alert_outbox").fetchone()
        assert due <= clock.now() + dt_seconds(2)
        assert "Traceback" not in caplog.text
        clock.advance(seconds=2)
        assert app.outbox.deliver_due().sent == 1
        # Nothing is left blocking the alert: its resolved message follows at once.
        resolve_race(db)
        _, report = cycle(app)
        assert report.sent == 1
        assert [b["status"] for b in bodies(httpserver)] == ["firing", "firing", "resolved"]
    finally:
        app.close()


def test_429_retry_after_is_capped_at_an_hour(monkeypatch, db_url, db, clock, httpserver):
    too_many_requests(httpserver, "99999999999999999999")
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        _, report = cycle(app)
        assert "retrying in 3600.0s" in report.lines[0]
        clock.advance(seconds=3599)
        assert app.outbox.deliver_due().sent == 0
        clock.advance(seconds=1)
        assert app.outbox.deliver_due().sent == 1
    finally:
        app.close()


def test_429_retry_after_http_date_counts_from_the_injected_clock(
    monkeypatch, db_url, db, httpserver
):
    import datetime as dt
    from email.utils import format_datetime

    # A day ahead of the wall clock: a date read against the system time would be a day off.
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1))
    when = clock.now() + dt.timedelta(seconds=90)
    too_many_requests(httpserver, format_datetime(when, usegmt=True))
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)])
    try:
        seed_race(db, "race")
        _, report = cycle(app)
        assert "retrying in 90.0s" in report.lines[0]
        clock.advance(seconds=90)
        assert app.outbox.deliver_due().sent == 1
    finally:
        app.close()


def test_retry_past_max_delivery_age_gives_up_and_frees_the_resolved_message(
    monkeypatch, db_url, db, clock, httpserver
):
    too_many_requests(httpserver, "3000")  # 50 minutes: under the cap, past the age below
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)],
                   alerts__max_delivery_age="30m")  # fmt: skip
    try:
        seed_race(db, "race")
        _, report = cycle(app)
        assert (report.retried, report.dead) == (0, 1)
        ((kind, status, attempts, error),) = outbox(db)
        assert (kind, status, attempts) == ("firing", "dead", 1)
        assert error.startswith("HTTP 429: slow down; the next attempt (in 3000s)")
        assert error.endswith("would pass max_delivery_age 30m")
        resolve_race(db)
        _, report = cycle(app)
        assert report.sent == 1
        assert [b["status"] for b in bodies(httpserver)] == ["firing", "resolved"]
    finally:
        app.close()


def test_backoff_after_very_many_attempts_stays_at_its_cap(
    monkeypatch, db_url, db, clock, httpserver
):
    # A receiver down for days under a long max_delivery_age: 2.0**attempts once overflowed.
    httpserver.expect_request(SECRET_PATH).respond_with_data("busy", status=503)
    app = open_app(monkeypatch, db_url, clock, [webhook(httpserver)],
                   alerts__max_delivery_age="30d")  # fmt: skip
    try:
        seed_race(db, "race")
        cycle(app)
        db.execute("UPDATE dq_monitor.alert_outbox SET attempts = 5000")
        clock.advance(seconds=3)
        report = app.outbox.deliver_due()
        assert report.retried == 1
        assert 150.0 <= retry_delay(report.lines[0]) <= 300.0
    finally:
        app.close()


def dt_seconds(seconds):
    import datetime as dt

    return dt.timedelta(seconds=seconds)
