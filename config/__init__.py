"""Configuration layer: settings models, loading, and the exception tree every layer shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .alerts import AlertsSettings, RouteSettings, RouteType
    from .capacity import check_slots, database_pool_size, pooled, state_pool_size
    from .checks import (
        BUILTIN_CATALOGUE,
        BuiltinCatalogue,
        CheckSettings,
        ChecksSettings,
        CriticalCheckSettings,
        CustomCheckSettings,
        Severity,
        register_builtin,
    )
    from .databases import (
        DEFAULT_DATABASE,
        NO_DATABASE,
        CheckOn,
        DatabaseSettings,
        state_schema_for,
        unknown_database,
        url_setting,
    )
    from .durations import Duration, PositiveDuration, format_duration, parse_duration
    from .errors import (
        EXIT_CONFIG,
        EXIT_NOT_YET,
        EXIT_OK,
        EXIT_UNAVAILABLE,
        EXIT_VIOLATIONS,
        ConfigError,
        DatabaseError,
        DatabaseUnavailable,
        DqError,
        GateError,
        QueryFailed,
        QueryTimeout,
        SetupError,
        StoreError,
        StoreUnavailable,
        exit_code_of_kinds,
    )
    from .gate import GateSettings
    from .loading import database_url_configured, format_validation_error, load_settings
    from .ports import DEFAULT_METRICS_PORT
    from .redaction import redact
    from .retention import RetentionSettings, gate_history_floor, too_short
    from .schedule import ScheduleSettings
    from .settings import Settings
    from .tables import PartitionProgressNames, RunMetadataNames, TablesSettings, WorkerRunsNames
    from .wording import count, noun

# Each name loads its module on first use: `--help` needs no pydantic.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "alerts": ("AlertsSettings", "RouteSettings", "RouteType"),
        "checks": (
            "BUILTIN_CATALOGUE",
            "BuiltinCatalogue",
            "CheckSettings",
            "ChecksSettings",
            "CriticalCheckSettings",
            "CustomCheckSettings",
            "Severity",
            "register_builtin",
        ),
        "durations": ("Duration", "PositiveDuration", "format_duration", "parse_duration"),
        "errors": (
            "EXIT_CONFIG",
            "EXIT_NOT_YET",
            "EXIT_OK",
            "EXIT_UNAVAILABLE",
            "EXIT_VIOLATIONS",
            "ConfigError",
            "DatabaseError",
            "DatabaseUnavailable",
            "DqError",
            "GateError",
            "QueryFailed",
            "QueryTimeout",
            "SetupError",
            "StoreError",
            "StoreUnavailable",
            "exit_code_of_kinds",
        ),
        "gate": ("GateSettings",),
        "loading": ("database_url_configured", "format_validation_error", "load_settings"),
        "redaction": ("redact",),
        "retention": ("RetentionSettings", "gate_history_floor", "too_short"),
        "ports": ("DEFAULT_METRICS_PORT",),
        "schedule": ("ScheduleSettings",),
        "databases": (
            "DEFAULT_DATABASE",
            "NO_DATABASE",
            "CheckOn",
            "DatabaseSettings",
            "state_schema_for",
            "unknown_database",
            "url_setting",
        ),
        "capacity": ("check_slots", "database_pool_size", "pooled", "state_pool_size"),
        "settings": ("Settings",),
        "tables": (
            "PartitionProgressNames",
            "RunMetadataNames",
            "TablesSettings",
            "WorkerRunsNames",
        ),
        "wording": ("count", "noun"),
    },
)

__all__ = [
    "BUILTIN_CATALOGUE",
    "DEFAULT_DATABASE",
    "DEFAULT_METRICS_PORT",
    "EXIT_CONFIG",
    "EXIT_NOT_YET",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_VIOLATIONS",
    "NO_DATABASE",
    "AlertsSettings",
    "BuiltinCatalogue",
    "CheckOn",
    "CheckSettings",
    "ChecksSettings",
    "ConfigError",
    "CriticalCheckSettings",
    "CustomCheckSettings",
    "DatabaseError",
    "DatabaseSettings",
    "DatabaseUnavailable",
    "DqError",
    "Duration",
    "GateError",
    "GateSettings",
    "PartitionProgressNames",
    "PositiveDuration",
    "QueryFailed",
    "QueryTimeout",
    "RetentionSettings",
    "RouteSettings",
    "RouteType",
    "RunMetadataNames",
    "ScheduleSettings",
    "Settings",
    "SetupError",
    "Severity",
    "StoreError",
    "StoreUnavailable",
    "TablesSettings",
    "WorkerRunsNames",
    "check_slots",
    "count",
    "database_pool_size",
    "database_url_configured",
    "exit_code_of_kinds",
    "format_duration",
    "format_validation_error",
    "gate_history_floor",
    "load_settings",
    "noun",
    "parse_duration",
    "pooled",
    "redact",
    "register_builtin",
    "state_pool_size",
    "state_schema_for",
    "too_short",
    "unknown_database",
    "url_setting",
]
