"""How the service schedules checks, keeps leadership, refreshes metrics and shuts down."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from .durations import Duration


class ScheduleSettings(BaseModel):
    """Service timing; each check's own interval or cron lives in its check settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    full_sweep_interval: Duration = Field(
        default=timedelta(days=1), description="How often each check also sweeps every run."
    )
    jitter: Duration = Field(
        default=timedelta(seconds=10),
        description="Random delay added to each run, so checks do not all start at once.",
    )
    misfire_grace_time: Duration = Field(
        default=timedelta(minutes=2),
        description="A run starting later than this after its time is recorded as missed.",
    )
    leader_poll_interval: Duration = Field(
        default=timedelta(seconds=5),
        description="How often a replica checks (or tries to take) leadership.",
    )
    metrics_refresh_interval: Duration = Field(
        default=timedelta(seconds=5),
        description="How often a replica reloads the results it serves from the state store.",
    )
    shutdown_timeout: Duration = Field(
        default=timedelta(seconds=8),
        description="Longest a SIGTERM may take: running checks are cancelled and waited for, "
        "then connections closed; whatever still waits on a silent database then is abandoned "
        "with one warning line, and the process exits 0 all the same.",
    )
