"""How long the state store keeps its history, and the floor the migration gate sets on it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .durations import Duration, format_duration
from .gate import GateSettings

# Whatever the gate reads is kept a day longer: the app's clock and the database's may differ,
# and an evaluation that starts just before a prune must still find its whole window.
FLOOR_SLACK = timedelta(days=1)
_GATE_DEFAULTS = GateSettings.model_fields


class RetentionSettings(BaseModel):
    """What the leader deletes from the state store, and how (see `dq-monitor state prune`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    history: Duration = Field(
        default=timedelta(days=90),
        description="How long check runs, delivered and dead alert messages, ended silences "
        "and pg_stat_statements samples are kept. At least what the gate reads (its clean "
        "period, full-sweep gap and run gaps, plus a day); shorter is rejected. Pending "
        "messages, the migration audit and its archive are never deleted.",
    )
    batch_size: int = Field(
        default=5000,
        ge=100,
        le=100_000,
        description="Rows deleted per statement; each batch is its own short transaction.",
    )
    interval: Duration = Field(
        default=timedelta(hours=1), description="How often the leader prunes. More than 0s."
    )

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than 0s")
        return value


def gate_history_floor(gate: GateSettings, intervals: Iterable[timedelta]) -> timedelta:
    """The longest history any gate evaluation with these settings reads, plus FLOOR_SLACK.

    Each rule at the longer of the configured value and the default (weaker settings may be
    accepted, stronger ones apply anyway): the clean period, before it the longest allowed
    time between full sweeps, and before that the longest allowed gap between runs of the
    slowest gating check (`intervals` are the gating checks' schedule intervals).
    """
    period = max(gate.required_clean_period, _default("required_clean_period"))
    full_gap = max(gate.full_sweep_max_gap, _default("full_sweep_max_gap"))
    gaps = max(gate.max_gap_intervals, float(_GATE_DEFAULTS["max_gap_intervals"].default))
    longest = max(intervals, default=timedelta(0))
    return period + full_gap + longest * gaps + FLOOR_SLACK


def _default(name: str) -> timedelta:
    value = _GATE_DEFAULTS[name].default
    assert isinstance(value, timedelta)
    return value


def too_short(history: timedelta, floor: timedelta) -> str | None:
    """The one-line complaint when `history` is shorter than the gate's `floor`, else None."""
    if history >= floor:
        return None
    return (
        f"retention.history {format_duration(history)} is shorter than the "
        f"{format_duration(floor)} the migration gate reads (clean period + full-sweep gap + "
        "run gaps + 1d); set it to at least that"
    )
