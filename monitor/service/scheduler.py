"""APScheduler jobs: one per check (consistency checks on one schedule share one), and sweeps."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from checks import Check, Probe, build_probes, select_checks
from checks.consistency import ConsistencyPart
from config import CheckSettings, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """One scheduled unit: a probe (one or more checks) and the schedule they share."""

    key: str
    probe: Probe
    schedule: CheckSettings

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.probe.checks


def job_specs(settings: Settings) -> list[JobSpec]:
    """Group the enabled checks into jobs: consistency parts with the same schedule share one."""
    groups: dict[str, list[Check]] = {}
    for check in select_checks(settings):
        shared = isinstance(check, ConsistencyPart)
        key = f"consistency:{check.settings.schedule_key}" if shared else check.name
        groups.setdefault(key, []).append(check)
    specs = []
    for checks in groups.values():
        (probe,) = build_probes(checks)
        specs.append(JobSpec("+".join(c.name for c in checks), probe, checks[0].settings))
    return specs


def build_scheduler(
    settings: Settings,
    specs: list[JobSpec],
    *,
    now: dt.datetime,
    run: Callable[[JobSpec, bool], None],
    skipped: Callable[[JobSpec, str, dt.datetime], None],
    first_full_sweep: Callable[[JobSpec], dt.datetime],
) -> BlockingScheduler:
    """A UTC BlockingScheduler with an incremental and a full-sweep job per spec.

    `now` is the injected clock's time at start-up. Each incremental job runs once then,
    then on its interval or cron, with jitter; `coalesce` folds a backlog into one run and
    `max_instances=1` forbids overlap. Missed and overlapping runs are reported to `skipped`;
    job errors are logged with their traceback.
    """
    sched = settings.schedule
    options = {
        "coalesce": True,
        "max_instances": 1,
        # Deliberate: a run may start this late (a slow neighbour, a GC pause, a busy
        # pool) and still count; later than that it is recorded as missed.
        "misfire_grace_time": int(sched.misfire_grace_time.total_seconds()),
    }
    scheduler = BlockingScheduler(
        timezone=dt.UTC,
        executors={"default": ThreadPoolExecutor(max_workers=max(2, 2 * len(specs)))},
        job_defaults=options,
    )
    jitter = int(sched.jitter.total_seconds()) or None
    by_id: dict[str, JobSpec] = {}
    for spec in specs:
        trigger: IntervalTrigger | CronTrigger
        if spec.schedule.cron:
            trigger = CronTrigger.from_crontab(spec.schedule.cron, timezone=dt.UTC)
            trigger.jitter = jitter
        else:
            seconds = spec.schedule.interval.total_seconds()
            trigger = IntervalTrigger(seconds=seconds, jitter=jitter, timezone=dt.UTC)
        scheduler.add_job(run, trigger, args=(spec, False), id=f"incremental:{spec.key}",
                          name=f"check {spec.key}", next_run_time=now, **options)  # fmt: skip
        full = IntervalTrigger(
            seconds=sched.full_sweep_interval.total_seconds(), jitter=jitter, timezone=dt.UTC
        )
        scheduler.add_job(run, full, args=(spec, True), id=f"full:{spec.key}",
                          name=f"full sweep {spec.key}",
                          next_run_time=max(now, first_full_sweep(spec)), **options)  # fmt: skip
        by_id[f"incremental:{spec.key}"] = by_id[f"full:{spec.key}"] = spec

    scheduler.add_listener(
        skip_listener(by_id, skipped), EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR
    )
    return scheduler


def skip_listener(
    by_id: dict[str, JobSpec], skipped: Callable[[JobSpec, str, dt.datetime], None]
) -> Callable[[Any], None]:
    """Turn APScheduler's missed, max-instances and error events into records and log lines."""

    def listener(event: Any) -> None:
        spec = by_id.get(event.job_id)
        if spec is None:
            return
        if event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
            log.warning("run of %s scheduled at %s was missed", spec.key, event.scheduled_run_time)
            skipped(spec, "missed", event.scheduled_run_time)
        elif event.code == EVENT_JOB_MAX_INSTANCES and isinstance(event, JobSubmissionEvent):
            log.warning("run of %s skipped: the previous run is still going", spec.key)
            skipped(spec, "overlap", event.scheduled_run_times[0])
        elif event.code == EVENT_JOB_ERROR and isinstance(event, JobExecutionEvent):
            log.error("job %s failed: %r", event.job_id, event.exception, exc_info=event.exception)

    return listener
