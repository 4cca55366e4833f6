"""APScheduler jobs: one per database and check (consistency checks on one schedule share one),
and sweeps."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
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
from config import DEFAULT_DATABASE, CheckSettings, Settings
from monitor.service.slots import CheckSlots, SlotExecutor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """One scheduled unit: a probe (one or more checks) of one database and the schedule they
    share."""

    key: str
    probe: Probe
    schedule: CheckSettings
    database: str = DEFAULT_DATABASE

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.probe.checks

    def job_id(self, kind: str) -> str:
        """`incremental:<key>` or `full:<key>`; another database than default is named too
        (`full:eu/<key>`), so every database's job is its own."""
        where = "" if self.database == DEFAULT_DATABASE else f"{self.database}/"
        return f"{kind}:{where}{self.key}"

    @property
    def executor(self) -> str:
        """The database's own thread pool: its slots are never another database's."""
        return executor_for(self.database)


def executor_for(database: str) -> str:
    return "default" if database == DEFAULT_DATABASE else f"database:{database}"


def job_specs(settings: Settings, database: str = DEFAULT_DATABASE) -> list[JobSpec]:
    """Group the enabled checks of `settings` (one database's, Settings.for_database) into
    jobs: consistency parts with the same schedule share one."""
    groups: dict[str, list[Check]] = {}
    for check in select_checks(settings):
        shared = isinstance(check, ConsistencyPart)
        key = f"consistency:{check.settings.schedule_key}" if shared else check.name
        groups.setdefault(key, []).append(check)
    specs = []
    for checks in groups.values():
        (probe,) = build_probes(checks)
        specs.append(JobSpec("+".join(c.name for c in checks), probe, checks[0].settings, database))
    return specs


def build_scheduler(
    settings: Settings,
    specs: list[JobSpec],
    *,
    now: dt.datetime,
    run: Callable[[JobSpec, bool], None],
    skipped: Callable[[JobSpec, str, dt.datetime], None],
    first_full_sweep: Callable[[JobSpec], dt.datetime],
    slots: Mapping[str, int] | None = None,
    check_slots: CheckSlots | None = None,
) -> BlockingScheduler:
    """A UTC BlockingScheduler with an incremental and a full-sweep job per spec.

    Each database's jobs run on its own thread pool of `slots[database]` threads (default:
    one per job), so a database whose checks hang holds only its own threads; with
    `check_slots`, a job also takes one of those global slots while it runs (at most
    max_concurrent_checks over all databases). A run that waits for either past
    misfire_grace_time is recorded as missed, and the other databases' runs start on time.
    `now` is the injected clock's time at start-up. Each incremental job runs once then,
    then on its interval or cron, with jitter; `coalesce` folds a backlog into one run and
    `max_instances=1` forbids overlap. Missed and overlapping runs are reported to
    `skipped`; job errors are logged with their traceback.
    """
    sched = settings.schedule
    options = {
        "coalesce": True,
        "max_instances": 1,
        # Deliberate: a run may start this late (a slow neighbour, a GC pause, a busy
        # pool) and still count; later than that it is recorded as missed.
        "misfire_grace_time": int(sched.misfire_grace_time.total_seconds()),
    }
    per_database: dict[str, int] = {}
    for spec in specs:
        per_database[spec.database] = per_database.get(spec.database, 0) + 2
    threads = {
        db: max(1, min(jobs, (slots or {}).get(db, jobs))) for db, jobs in per_database.items()
    }
    executors = {
        executor_for(db): ThreadPoolExecutor(max_workers=n)
        if check_slots is None
        else SlotExecutor(n, check_slots)
        for db, n in threads.items()
    }
    executors.setdefault("default", ThreadPoolExecutor(max_workers=2))
    scheduler = BlockingScheduler(timezone=dt.UTC, executors=executors, job_defaults=options)
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
        scheduler.add_job(run, trigger, args=(spec, False), id=spec.job_id("incremental"),
                          name=f"check {spec.job_id('incremental')}", next_run_time=now,
                          executor=spec.executor, **options)  # fmt: skip
        full = IntervalTrigger(
            seconds=sched.full_sweep_interval.total_seconds(), jitter=jitter, timezone=dt.UTC
        )
        scheduler.add_job(run, full, args=(spec, True), id=spec.job_id("full"),
                          name=f"full sweep {spec.job_id('full')}", executor=spec.executor,
                          next_run_time=max(now, first_full_sweep(spec)), **options)  # fmt: skip
        by_id[spec.job_id("incremental")] = by_id[spec.job_id("full")] = spec

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
