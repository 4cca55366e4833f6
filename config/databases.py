"""The monitored databases: several named ones, or DQ_DATABASE_URL alone as one named default."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
)

from .checks import ChecksSettings
from .durations import PositiveDuration
from .errors import ConfigError
from .tables import TablesSettings

#: A database's name is a label value in every metric, alert and state-store row.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: The name DQ_DATABASE_URL's one database gets.
DEFAULT_DATABASE = "default"
#: PostgreSQL truncates longer identifiers (NAMEDATALEN - 1): two schemas could collide.
_LONGEST_IDENTIFIER = 63
#: Commands that need a database and have none say this.
NO_DATABASE = (
    "DQ_DATABASE_URL is not set; set it (or database_url in the config file) to the monitored "
    "database's URL, or list several databases as [[databases]] (DQ_DATABASES)"
)


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
        'pg_stat_statements too, and check_on = "standby" runs the checks on the first.',
    )
    check_on: CheckOn = Field(
        default=CheckOn.PRIMARY, description='Where the checks run: "primary" or "standby".'
    )
    max_replay_lag: PositiveDuration = Field(
        default=timedelta(minutes=5),
        description='With check_on = "standby": a standby further behind than this gives an '
        "error result, not a clean one.",
    )
    tables: TablesSettings | None = Field(
        default=None,
        description="This database's table and column names, replacing the top-level tables "
        "(none: the top-level ones).",
    )
    checks: dict[str, dict[str, JsonValue]] = Field(
        default_factory=dict,
        description="Per-check overrides for this database, merged field by field over the "
        "top-level [checks.<name>] settings, e.g. [databases.checks.stale_partitions] "
        'interval = "10m"; a custom check is named by its name.',
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


def state_schema_for(base: str, name: str) -> str:
    """The state schema of database `name`: `base` itself for `default` (so a single-database
    install keeps its history), else `{base}_{name}`. Raises ValueError past 63 characters."""
    if name == DEFAULT_DATABASE:
        return base
    schema = f"{base}_{name}"
    if len(schema) > _LONGEST_IDENTIFIER:
        raise ValueError(
            f"database {name!r}: its state schema {schema} is longer than "
            f"{_LONGEST_IDENTIFIER} characters; use a shorter name or state_schema"
        )
    return schema


def url_setting(name: str, listed: bool) -> str:
    """The setting that holds database `name`'s URL, for error messages: DQ_DATABASE_URL, or
    its entry in `databases` when it was `listed` there."""
    return f"databases[{name}].url" if listed else "DQ_DATABASE_URL"


def unknown_database(name: str, names: Sequence[str]) -> ConfigError:
    """The one-line error for a --database that names no configured database."""
    known = ", ".join(names) or "none configured"
    return ConfigError(f"unknown database {name!r}; databases: {known}")


def effective_checks(
    top: ChecksSettings, overrides: Mapping[str, Mapping[str, JsonValue]], database: str
) -> ChecksSettings:
    """`top` with `database`'s per-check overrides merged over it, validated by the same
    models. Raises ValueError, one line naming the database and the field."""
    if not overrides:
        return top
    data: dict[str, Any] = top.model_dump()
    customs: list[dict[str, Any]] = list(data.pop("custom", []))
    by_custom = {c["name"]: i for i, c in enumerate(customs)}
    for check, fields in overrides.items():
        if check in by_custom:
            if "name" in fields:
                raise ValueError(f"database {database!r}: checks.{check}.name cannot be overridden")
            customs[by_custom[check]] = {**customs[by_custom[check]], **fields}
        elif check in data:
            data[check] = {**data[check], **fields}
        else:
            raise ValueError(f"database {database!r}: checks names an unknown check {check!r}")
    try:
        return ChecksSettings.model_validate({**data, "custom": customs})
    except ValidationError as exc:
        names = [c.get("name") for c in customs]
        problems = [
            f"checks.{_where(e['loc'], names)}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ValueError(f"database {database!r}: {'; '.join(problems)}") from None


def _where(loc: tuple[int | str, ...], custom_names: list[Any]) -> str:
    # A custom check is overridden by its name: name it so, not by its place in the list.
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "custom" and isinstance(parts[1], int):
        parts = [str(custom_names[parts[1]]), *parts[2:]]
    return ".".join(str(p) for p in parts)
