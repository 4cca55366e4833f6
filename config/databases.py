"""The monitored databases: several named ones, or DQ_DATABASE_URL alone as one named default."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .durations import PositiveDuration

#: A database's name is a label value in every metric, alert and state-store row.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: The name DQ_DATABASE_URL's one database gets.
DEFAULT_DATABASE = "default"


class CheckOn(StrEnum):
    """Where a database's checks run."""

    PRIMARY = "primary"
    STANDBY = "standby"


class DatabaseSettings(BaseModel):
    """One monitored job-system database, its hot standbys and where its checks run."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(
        description="The database's label in metrics, alerts and reports: lower-case letters, "
        "digits and underscores, starting with a letter."
    )
    url: SecretStr = Field(description="libpq URL of the database's primary (a secret).")
    standby_urls: tuple[SecretStr, ...] = Field(
        default=(),
        description="libpq URLs of its hot standbys (secrets): the gate reads their "
        "pg_stat_statements too, and check_on = \"standby\" runs the checks on the first.",
    )
    check_on: CheckOn = Field(
        default=CheckOn.PRIMARY, description='Where the checks run: "primary" or "standby".'
    )
    max_replay_lag: PositiveDuration = Field(
        default=timedelta(minutes=5),
        description="With check_on = \"standby\": a standby further behind than this gives an "
        "error result, not a clean one.",
    )

    @field_validator("name")
    @classmethod
    def _label_value(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "must be lower-case letters, digits and underscores, starting with a letter "
                "(at most 63)"
            )
        return value
