"""Settings every check shares, the built-ins' catalogue, and custom checks from the file."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

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


class BuiltinCatalogue:
    """The built-in checks' names and settings models, in registration order.

    `config` is the bottom layer and cannot import `checks`, yet validating `[checks.<name>]`
    needs each built-in's model: checks/registry.py fills this catalogue when `checks` is
    imported, and ChecksSettings validates against it. Validation before any registration
    fails closed (RuntimeError) rather than rejecting every built-in's table as unknown.
    """

    def __init__(self) -> None:
        self._models: dict[str, type[CheckSettings]] = {}
        self._gating: list[str] = []
        self._schema: type[BaseModel] | None = None

    def register(self, name: str, model: type[CheckSettings], *, gating: bool = False) -> None:
        """Add a built-in check; the same name again must bring the same model."""
        if not CHECK_NAME.fullmatch(name) or name == "custom":
            raise ValueError(f"not a valid built-in check name: {name!r}")
        known = self._models.get(name)
        if known is not None and known is not model:
            raise ValueError(f"built-in check {name!r} is already registered")
        if known is None:
            self._models[name] = model
            if gating:
                self._gating.append(name)
            self._schema = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._require())

    @property
    def gating(self) -> tuple[str, ...]:
        """The built-ins whose clean history migration 005 needs."""
        self._require()
        return tuple(self._gating)

    def model(self, name: str) -> type[CheckSettings]:
        return self._require()[name]

    def schema(self) -> type[BaseModel]:
        """A model with one field per built-in (defaults when absent, unknown names
        rejected), so that errors name `checks.<name>.<field>` as typed fields did."""
        if self._schema is None:
            fields: dict[str, Any] = {
                name: (model, Field(default_factory=model))
                for name, model in self._require().items()
            }
            self._schema = create_model(
                "BuiltinChecks",
                __config__=ConfigDict(extra="forbid", frozen=True),
                custom=(Any, None),
                **fields,
            )
        return self._schema

    def _require(self) -> dict[str, type[CheckSettings]]:
        if not self._models:
            raise RuntimeError(
                "no built-in checks are registered: import the checks package before "
                "validating settings"
            )
        return self._models


BUILTIN_CATALOGUE = BuiltinCatalogue()


def register_builtin(name: str, model: type[CheckSettings], *, gating: bool = False) -> None:
    """Make a built-in check's `[checks.<name>]` table known to the settings (see
    BuiltinCatalogue); checks/registry.py calls this for every entry."""
    BUILTIN_CATALOGUE.register(name, model, gating=gating)


S = TypeVar("S", bound=CheckSettings)


class ChecksSettings(BaseModel):
    """The built-in checks by name (the catalogue's models), plus custom ones; unknown names
    are rejected. The built-ins' settings are this model's extra fields: validated here,
    read with builtin() or of()."""

    model_config = ConfigDict(extra="allow", frozen=True)

    custom: tuple[CustomCheckSettings, ...] = Field(
        default=(), description="Checks declared in the configuration, each with its own SQL."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _builtins_from_catalogue(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(data, ChecksSettings):
            return data
        raw = dict(data) if isinstance(data, Mapping) else data
        if isinstance(raw, dict):
            for name in BUILTIN_CATALOGUE.names:
                # A whole table in one variable (DQ_CHECKS__<NAME>) is JSON, as pydantic-settings
                # reads it for a declared model field.
                if isinstance(raw.get(name), str):
                    raw[name] = _json_table(name, raw[name])
        checked = BUILTIN_CATALOGUE.schema().model_validate(raw)
        values = {name: getattr(checked, name) for name in BUILTIN_CATALOGUE.names}
        custom = raw.get("custom", ()) if isinstance(raw, dict) else ()
        return handler({**values, "custom": custom})

    @model_serializer(mode="wrap")
    def _builtins_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        custom = dumped.pop("custom", None)
        return dumped if custom is None else {**dumped, "custom": custom}

    @model_validator(mode="after")
    def _unique_names(self) -> ChecksSettings:
        seen = set(BUILTIN_CATALOGUE.names)
        for custom in self.custom:
            if custom.name in seen:
                raise ValueError(f"custom check name {custom.name!r} is already used")
            seen.add(custom.name)
        return self

    def builtins(self) -> dict[str, CheckSettings]:
        """Every built-in check's settings by name, in registration order."""
        return {name: self.builtin(name) for name in BUILTIN_CATALOGUE.names}

    def builtin(self, name: str) -> CheckSettings:
        """Settings of a built-in check by name; KeyError for a name that is not one."""
        value = (self.__pydantic_extra__ or {}).get(name)
        if not isinstance(value, CheckSettings):
            raise KeyError(f"not a built-in check: {name!r}")
        return value

    def of(self, name: str, model: type[S]) -> S:
        """Settings of a built-in check, as its own settings model (TypeError if not one)."""
        value = self.builtin(name)
        if not isinstance(value, model):
            raise TypeError(f"check {name!r} has {type(value).__name__}, not {model.__name__}")
        return value

    def names(self) -> tuple[str, ...]:
        """Every configured check's name: built-ins first, then the custom ones."""
        return (*BUILTIN_CATALOGUE.names, *(c.name for c in self.custom))


def _json_table(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError's text gives the position, not the input
        raise ValueError(f"checks.{name} is not valid JSON ({exc})") from None
