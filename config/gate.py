"""Settings of the column-removal gate and of the guarded migration it allows."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .checks import BUILTIN_CATALOGUE
from .durations import Duration, format_duration

# While the migration waits for or holds its ACCESS EXCLUSIVE lock, every query on the table
# queues behind it: each wait must be bounded, and 0 would mean no bound at all to PostgreSQL.
MAX_LOCK_TIMEOUT = timedelta(minutes=1)
MAX_STATEMENT_TIMEOUT = timedelta(minutes=10)


class GateSettings(BaseModel):
    """When the deprecated counters may be dropped, and how the drop is applied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required_clean_period: Duration = Field(
        default=timedelta(days=7),
        description="How long every gating check must have been clean, ending now. Less than "
        "the default applies only with accept_weaker_settings.",
    )
    checks: tuple[str, ...] = Field(
        default_factory=lambda: BUILTIN_CATALOGUE.gating,
        min_length=1,
        description="The checks whose history the gate reads. Migration 005's own gating "
        "checks (the default list) always gate; others may be added.",
    )
    max_gap_intervals: float = Field(
        default=3.0,
        gt=1,
        description="Longest allowed gap between successful runs, in the intervals the runs "
        "recorded. More than the default applies only with accept_weaker_settings.",
    )
    full_sweep_max_gap: Duration = Field(
        default=timedelta(hours=26),
        description="Longest allowed time between clean full sweeps (a day, plus slack). More "
        "than the default applies only with accept_weaker_settings.",
    )
    unknown_blocks: bool = Field(
        default=True,
        description="Whether evidence that cannot be established blocks the gate. false "
        "applies only with accept_weaker_settings.",
    )
    accept_weaker_settings: bool = Field(
        default=False,
        description="Evaluate with gate settings weaker than the defaults or than the "
        "service's last recorded ones. Every report then says so on its first line, and the "
        "evidence hash and the migration's audit row record it; without it the stronger "
        "value applies.",
    )
    lock_timeout: Duration = Field(
        default=timedelta(seconds=2),
        description="lock_timeout for each migration attempt. More than 0s, at most 1m.",
    )
    statement_timeout: Duration = Field(
        default=timedelta(seconds=30),
        description="statement_timeout of the migration's statements, which run while it holds "
        "the table's lock. More than 0s, at most 10m.",
    )
    lock_retries: int = Field(default=5, ge=1, le=50, description="Migration attempts at most.")
    evaluate_interval: Duration = Field(
        default=timedelta(minutes=5),
        description="How often the service re-evaluates the gate. More than 0s.",
    )

    @field_validator("lock_timeout", "statement_timeout", "evaluate_interval")
    @classmethod
    def _bounded(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        name = info.field_name
        if value <= timedelta(0):
            raise ValueError("must be more than 0s (0 would mean no limit at all)")
        bound = {"lock_timeout": MAX_LOCK_TIMEOUT, "statement_timeout": MAX_STATEMENT_TIMEOUT}
        if name in bound and value > bound[name]:
            raise ValueError(f"must be at most {format_duration(bound[name])}")
        return value
