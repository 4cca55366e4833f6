"""The state store's roles on a real database: typed stats, outbox claims, alert rows."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from alerts import Alert, AlertBook, Kind, Notification, Outcome, State, fingerprint
from checks import build_probes, select_checks
from config import Severity, load_settings
from monitor.app import App
from monitor.store import DURATION_BUCKETS, CheckStats, RouteDelivery, StoreStats
from monitor.store.alert_state import AlertRows
from tests.factories import seed_race
from tests.helpers import FakeClock


@pytest.fixture
def app(monkeypatch, db_url):
    monkeypatch.setenv("DQ_DATABASE_URL", db_url)
    monkeypatch.setenv("DQ_SETTLE_TIME", "0s")
    monkeypatch.setenv("DQ_ALERTS__ROUTES", json.dumps([{"name": "ops", "type": "console"}]))
    # Pooled, so that a second claim can come from a second connection.
    application = App.open(
        load_settings(), clock=FakeClock(), console=io.StringIO(), pool_size=2
    )
    yield application
    application.close()


def message(route: str, key: str, now: dt.datetime) -> Notification:
    return Notification(
        kind=Kind.FIRING, check="dashboard_mismatch", route=route,
        fingerprint=fingerprint("dashboard_mismatch", route), idempotency_key=key,
        severity=Severity.CRITICAL, description="totals differ", violations=1,
        previous_violations=0, active_since=now, created_at=now,
    )  # fmt: skip


def test_stats_are_typed_rows(app, db):
    assert app.store.stats() == StoreStats()
    assert app.store.stats().check("dashboard_mismatch") == CheckStats("dashboard_mismatch")
    seed_race(db, "race")
    app.pipeline.run(["dashboard_mismatch"])
    app.outbox.deliver_due()
    stats = app.store.stats()
    row = stats.check("dashboard_mismatch")
    assert (row.severity, row.last_status, row.last_mode) == ("critical", "violation", "full")
    assert (row.last_violations, row.runs_total, row.errors_total) == (1, 1, 0)
    assert len(row.duration_buckets) == len(DURATION_BUCKETS) + 1
    assert sum(row.duration_buckets) == 1
    assert row.last_success_at == row.last_run_at == app.clock.now()
    ops = stats.delivery.route("ops")
    assert (ops.sent_total, ops.failed_total, ops.dead_total) == (1, 0, 0)
    assert stats.delivery.route("elsewhere") == RouteDelivery("elsewhere")
    assert stats.delivery.outbox_pending == 0
    assert stats.service["database"]["up"] is True


def test_a_claim_holds_its_message_until_it_commits(app):
    now = app.clock.now()
    with app.store.session("queueing") as conn, conn.transaction():
        AlertRows(conn, app.store.tables).enqueue(message("ops", "k1", now), now)
    assert app.store.outbox.counts() == (1, 0)
    with app.store.outbox.claim_due(now) as claim:
        assert claim is not None
        assert (claim.message.route, claim.message.attempts) == ("ops", 0)
        with app.store.outbox.claim_due(now) as other:
            assert other is None  # held by the first claim, skipped
        claim.mark_retry(Outcome(False, status=503, reason="HTTP 503"), 1, now, 30.0)
    with app.store.outbox.claim_due(now) as claim:
        assert claim is None  # not due before its retry
    later = now + dt.timedelta(seconds=31)
    with app.store.outbox.claim_due(later) as claim:
        assert claim is not None
        assert (claim.message.attempts, claim.message.last_error) == (1, "HTTP 503")
        claim.mark_dead(Outcome(False, permanent=True, reason="HTTP 404"))
    assert app.store.outbox.counts() == (0, 1)
    ops = app.store.stats().delivery.route("ops")
    assert (ops.failed_total, ops.dead_total) == (1, 1)


def test_alert_rows_round_trip(app):
    alert = Alert(
        fingerprint=fingerprint("dashboard_mismatch", "ops"), check="dashboard_mismatch",
        route="ops", state=State.FIRING, failing_runs=2, active_since=app.clock.now(),
        last_sent_at=app.clock.now(), last_sent_kind=Kind.FIRING,
        last_keys=({"run_id": "r1"},), last_violations=1,
    )  # fmt: skip
    with app.store.session("saving") as conn, conn.transaction():
        rows = AlertRows(conn, app.store.tables)
        assert rows.load([alert.fingerprint]) == {}
        rows.save(alert)
        assert rows.load([alert.fingerprint, "other"]) == {alert.fingerprint: alert}
        assert rows.silenced("dashboard_mismatch", app.clock.now()) is False


class FailingBook(AlertBook):
    """Advances alerts for real, then fails: the check run's transaction must roll back."""

    def apply(self, records, check, result):
        assert super().apply(records, check, result) == 1
        raise RuntimeError("after the message was queued")


def test_the_run_its_alert_and_its_message_commit_together(app, db):
    seed_race(db, "race")
    (check,) = select_checks(app.settings, ["dashboard_mismatch"])
    (probe,) = build_probes([check])
    app.pipeline.alerts = FailingBook(app.settings.alerts, app.clock)
    with pytest.raises(RuntimeError, match="after the message was queued"):
        app.pipeline.run_probes([probe], full=True, trigger="manual")
    for table in ("check_runs", "alert_state", "alert_outbox", "check_stats"):
        assert db.execute(f"SELECT count(*) FROM dq_monitor.{table}").fetchone() == (0,), table
