"""The scheduler's jobs and events, built for real but not started (no sleeping on schedules)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config import load_settings
from monitor.service.scheduler import build_scheduler, job_specs, skip_listener

# Far from today on purpose: the scheduler must take its time from the injected clock only.
NOW = dt.datetime(2031, 3, 9, 12, 0, tzinfo=dt.UTC)


def without_consolidation_checks(monkeypatch) -> None:
    """The job lists below predate the two consolidation checks: they stay off here."""
    monkeypatch.setenv("DQ_CHECKS__CONSOLIDATION_MISSED__ENABLED", "false")
    monkeypatch.setenv("DQ_CHECKS__PREMATURE_CONSOLIDATION__ENABLED", "false")


def test_consistency_checks_on_one_schedule_share_a_job(monkeypatch):
    without_consolidation_checks(monkeypatch)
    specs = job_specs(load_settings())
    assert [s.key for s in specs] == [
        "dashboard_mismatch+missing_worker_runs+flag_conflict", "stale_partitions",
        "counter_writes",
    ]  # fmt: skip


def test_a_consistency_check_with_its_own_schedule_gets_its_own_job(monkeypatch):
    monkeypatch.setenv("DQ_CHECKS__FLAG_CONFLICT__INTERVAL", "1m")
    monkeypatch.setenv("DQ_CHECKS__COUNTER_WRITES__ENABLED", "false")
    without_consolidation_checks(monkeypatch)
    keys = [s.key for s in job_specs(load_settings())]
    assert keys == ["dashboard_mismatch+missing_worker_runs", "flag_conflict", "stale_partitions"]


def build(monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(f"DQ_{key.upper()}", value)
    settings = load_settings()
    specs = job_specs(settings)
    skipped = []
    scheduler = build_scheduler(
        settings, specs, now=NOW, run=lambda spec, full: None,
        skipped=lambda spec, status, at: skipped.append((spec.key, status, at)),
        first_full_sweep=lambda spec: NOW + dt.timedelta(hours=3),
    )  # fmt: skip
    return scheduler, specs, skipped


def test_jobs_triggers_and_defaults(monkeypatch):
    scheduler, specs, _ = build(
        monkeypatch, checks__stale_partitions__cron="*/10 * * * *", schedule__jitter="7s"
    )
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert len(jobs) == 2 * len(specs)
    incremental = jobs["incremental:counter_writes"]
    assert isinstance(incremental.trigger, IntervalTrigger)
    assert incremental.trigger.interval == dt.timedelta(minutes=5)
    assert incremental.trigger.jitter == 7
    assert incremental.coalesce is True
    assert incremental.max_instances == 1
    assert incremental.misfire_grace_time == 120
    # A first run at start-up, on the injected clock.
    assert incremental.next_run_time == NOW
    assert isinstance(jobs["incremental:stale_partitions"].trigger, CronTrigger)
    full = jobs["full:counter_writes"]
    assert full.trigger.interval == dt.timedelta(days=1)
    assert full.args[1] is True
    assert str(scheduler.timezone) == "UTC"


def test_full_sweep_resumes_from_the_last_one_recorded(monkeypatch):
    scheduler, _, _ = build(monkeypatch)
    full = next(j for j in scheduler.get_jobs() if j.id.startswith("full:"))
    assert full.next_run_time == NOW + dt.timedelta(hours=3)


def test_missed_and_overlapping_runs_are_reported_and_errors_logged(monkeypatch, caplog):
    settings = load_settings()
    (spec, *_) = job_specs(settings)
    skipped = []
    listener = skip_listener(
        {"incremental:x": spec}, lambda s, status, at: skipped.append((s.key, status, at))
    )
    listener(JobExecutionEvent(EVENT_JOB_MISSED, "incremental:x", "default", NOW))
    listener(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "incremental:x", "default", [NOW]))
    with caplog.at_level(logging.ERROR):
        listener(JobExecutionEvent(EVENT_JOB_ERROR, "incremental:x", "default", NOW,
                                   exception=RuntimeError("boom")))  # fmt: skip
    listener(JobExecutionEvent(EVENT_JOB_MISSED, "unknown", "default", NOW))
    assert skipped == [(spec.key, "missed", NOW), (spec.key, "overlap", NOW)]
    assert "job incremental:x failed: RuntimeError('boom')" in caplog.text


@pytest.mark.parametrize("cron", ["61 * * * *", "every minute"])
def test_bad_cron_is_a_config_error(monkeypatch, cron):
    from config import ConfigError

    monkeypatch.setenv("DQ_CHECKS__FLAG_CONFLICT__CRON", cron)
    expected = r"checks\.flag_conflict\.cron: Value error, invalid cron"
    with pytest.raises(ConfigError, match=expected):
        load_settings()
