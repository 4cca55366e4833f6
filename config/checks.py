"""Settings of each check: the built-ins by name, and custom checks from the config file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .durations import Duration


class Severity(StrEnum):
    """How urgent a check's violations are; ordered info < warning < critical."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

CHECK_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class CheckSettings(BaseModel):
    """What every check has: on/off, severity, schedule and an optional description override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Whether the check runs.")
    severity: Severity = Field(
        default=Severity.WARNING, description="How urgent the check's violations are."
    )
    description: str | None = Field(
        default=None, description="Shown with results and alerts instead of the built-in text."
    )
    runbook_url: str | None = Field(default=None, description="Runbook link shown in alerts.")
    interval: Duration = Field(
        default=timedelta(minutes=5), description="How often `dq-monitor run` runs the check."
    )
    cron: str | None = Field(
        default=None, description="A crontab expression (UTC) used instead of the interval."
    )

    @field_validator("interval")
    @classmethod
    def _sensible_interval(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    def typical_interval(self, at: datetime) -> timedelta:
        """The schedule's interval; for a cron schedule, the gap between its next two firings."""
        if not self.cron:
            return self.interval
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger.from_crontab(self.cron, timezone="UTC")
        first = trigger.get_next_fire_time(None, at)
        second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
        assert first is not None
        assert second is not None
        gap: timedelta = second - first
        return gap

    @property
    def schedule_key(self) -> str:
        """Checks with equal keys can share one scheduled job."""
        return f"cron:{self.cron}" if self.cron else f"every:{self.interval.total_seconds()}"


class CriticalCheckSettings(CheckSettings):
    severity: Severity = Field(
        default=Severity.CRITICAL, description="How urgent the check's violations are."
    )


class StalePartitionsSettings(CheckSettings):
    threshold: Duration = Field(
        default=timedelta(minutes=30),
        description="Age of `updated_at` that makes a pending partition stale.",
    )

    @field_validator("threshold")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be longer than 0s")
        return value


class CounterWritesSettings(CheckSettings):
    remember: Duration = Field(
        default=timedelta(hours=24),
        description="How long a seen counter write stays a finding; one write fires one "
        "alert that resolves this long after the last write (0s: report each write once).",
    )


class CustomCheckSettings(CheckSettings):
    """A check declared in the config file: the rows its SQL returns are the violations."""

    name: str = Field(
        description="The check's name (lower-case letters, digits, underscores), "
        "its `check` label and alert key."
    )
    sql: str = Field(
        min_length=1, description="One SELECT statement; every row it returns is a violation."
    )
    description: str | None = Field(default=None, description="Shown with results and alerts.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not CHECK_NAME.fullmatch(value):
            raise ValueError(
                "must be lower-case letters, digits and underscores, starting with a letter"
            )
        return value

    @field_validator("sql")
    @classmethod
    def _single_statement(cls, value: str) -> str:
        text = value.strip().rstrip(";").strip()
        if not text:
            raise ValueError("must be a SELECT statement")
        if ";" in text:
            raise ValueError("must be a single statement (no ';' inside)")
        return text


class ChecksSettings(BaseModel):
    """The built-in checks by name, plus custom ones; unknown names are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dashboard_mismatch: CriticalCheckSettings = CriticalCheckSettings()
    missing_worker_runs: CheckSettings = CheckSettings()
    flag_conflict: CriticalCheckSettings = CriticalCheckSettings()
    stale_partitions: StalePartitionsSettings = StalePartitionsSettings()
    counter_writes: CounterWritesSettings = CounterWritesSettings()
    custom: tuple[CustomCheckSettings, ...] = Field(
        default=(), description="Checks declared in the configuration, each with its own SQL."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ChecksSettings:
        seen = set(BUILTIN_CHECKS)
        for custom in self.custom:
            if custom.name in seen:
                raise ValueError(f"custom check name {custom.name!r} is already used")
            seen.add(custom.name)
        return self

    def builtin(self, name: str) -> CheckSettings:
        """Settings of a built-in check by name."""
        value = getattr(self, name)
        assert isinstance(value, CheckSettings)
        return value


BUILTIN_CHECKS = (
    "dashboard_mismatch",
    "missing_worker_runs",
    "flag_conflict",
    "stale_partitions",
    "counter_writes",
)
