"""The top-level settings model: environment DQ_*, an optional TOML file, then defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .alerts import AlertsSettings
from .capacity import connections_needed
from .checks import BUILTIN_CATALOGUE, ChecksSettings
from .databases import (
    DEFAULT_DATABASE,
    NO_DATABASE,
    CheckOn,
    DatabaseSettings,
    effective_checks,
    state_schema_for,
    unknown_database,
)
from .durations import Duration, format_duration
from .errors import ConfigError
from .gate import GateSettings
from .ports import DEFAULT_METRICS_PORT
from .retention import RetentionSettings, gate_history_floor, too_short
from .schedule import ScheduleSettings
from .tables import SqlName, TablesSettings
from .wording import count, noun

_LONGEST_TIMEOUT = timedelta(days=24)
LOG_FORMATS = ("text", "json")
# Not a clock read: the instant validation measures cron intervals from (see gate_history_floor).
_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)


class Settings(BaseSettings):
    """Everything dq-monitor can be told; validated once at start-up and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="DQ_",
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
        frozen=True,
    )

    database_url: SecretStr | None = Field(
        default=None, description="libpq URL of the monitored database (required)."
    )
    databases: tuple[DatabaseSettings, ...] = Field(
        default=(),
        description="Several monitored databases, each with a name, a url and optionally its "
        "standby_urls (TOML [[databases]], or DQ_DATABASES as a JSON list); instead of "
        "database_url, which is one database named default.",
    )
    state_database_url: SecretStr | None = Field(
        default=None,
        description="libpq URL of the database that holds dq-monitor's own state; "
        "defaults to the monitored database.",
    )
    state_schema: SqlName = Field(
        default="dq_monitor", description="Schema of dq-monitor's state tables."
    )
    statement_timeout: Duration = Field(
        default=timedelta(seconds=30), description="Longest a check's query may run."
    )
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="Longest to wait for a database connection; also how long sent data may go "
        "unacknowledged by the server's host (TCP user timeout) before the connection is dropped.",
    )
    query_grace: Duration = Field(
        default=timedelta(seconds=5),
        description="How long past statement_timeout a query may go without any answer from the "
        "server before dq-monitor cancels it; if the cancel gets no answer within 1s either, the "
        "connection is abandoned and the database counts as down. Applies to every query, state "
        "store included.",
    )
    settle_time: Duration = Field(
        default=timedelta(minutes=2),
        description="Runs changed more recently than this are not judged yet.",
    )
    incremental_overlap: Duration = Field(
        default=timedelta(minutes=5),
        description="How far an incremental run reaches back before the previous run's "
        "watermark, to cover commits that were in flight.",
    )
    sample_limit: int = Field(
        default=20, ge=1, le=1000, description="Most sample rows kept per check result."
    )
    sweep_chunk_rows: int = Field(
        default=10_000_000,
        ge=1,
        le=10**12,
        description="Partition rows a full sweep reads in one statement: tables past 1.5 times "
        "this are swept in ranges of runs of about this many rows each, inside the same "
        "snapshot, so each statement stays within statement_timeout whatever the size.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: str = Field(
        default="text",
        description='How log lines look on stderr: "text" (one line each) or "json" (one JSON '
        "object per line: timestamp, level, logger, message, and for check results check, "
        "mode, duration, outcome, violations; for alert deliveries route and outcome).",
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a container's scrape endpoint must be reachable
        description="Address the metrics and health endpoints listen on.",
    )
    metrics_port: int = Field(
        default=DEFAULT_METRICS_PORT,
        ge=1,
        le=65535,
        description="Port of /metrics, /healthz, /readyz and the status page.",
    )
    max_concurrent_checks: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Most check jobs `dq-monitor run` runs at once, over all databases; each "
        "database may have at most ceil(max_concurrent_checks / databases) of them in flight "
        "(1 once there are at least as many databases), so a slow or unreachable database "
        "holds only its own share and the others keep running. A run that finds no slot "
        "within schedule.misfire_grace_time is recorded as missed.",
    )
    max_connections: int = Field(
        default=100,
        ge=2,
        le=10_000,
        description="Most connections `dq-monitor run` may have open at once; start-up "
        "refuses settings that may need more, in one line. Counted: the state pool "
        "(max_concurrent_checks + 5), the leader-lock sessions (one per database plus one), "
        "and the monitored databases': with one database its pool (max_concurrent_checks + "
        "1, twice with check_on = \"standby\", plus 1 for the gate's standby reads); with "
        "several, connections open only while a check or gate read uses them, so "
        "max_concurrent_checks + 1 in all. The default fits up to 85 databases at the default "
        "max_concurrent_checks (9 + 5 + 86 = 100).",
    )
    schedule: ScheduleSettings = ScheduleSettings()
    alerts: AlertsSettings = AlertsSettings()
    # Factories: both defaults read the built-ins' catalogue, filled only once `checks` loads.
    gate: GateSettings = Field(default_factory=GateSettings)
    tables: TablesSettings = TablesSettings()
    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    retention: RetentionSettings = RetentionSettings()

    @model_validator(mode="after")
    def _databases_are_distinct(self) -> Settings:
        if self.databases and self.database_url is not None:
            raise ValueError(
                "set database_url (DQ_DATABASE_URL, one database) or databases (several), not both"
            )
        names = [d.name for d in self.databases]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"database names must be unique; repeated: {', '.join(repeated)}")
        for database in self.databases:
            if database.check_on is CheckOn.STANDBY and not database.standby_urls:
                raise ValueError(
                    f'database {database.name!r} has check_on = "standby" but no standby_urls'
                )
        return self

    @model_validator(mode="after")
    def _databases_fit(self) -> Settings:
        monitored = self.monitored()
        n = len(monitored)
        needed = connections_needed(
            self.max_concurrent_checks, n,
            standby_pool=any(d.check_on is CheckOn.STANDBY for d in monitored),
            standby_reads=any(d.standby_urls for d in monitored),
        )  # fmt: skip
        if n and needed > self.max_connections:
            raise ValueError(
                f"max_connections ({self.max_connections}) is too small: {count(n, 'database')} "
                f"with max_concurrent_checks {self.max_concurrent_checks} "
                f"{noun(n, 'needs', 'need')} {needed}"
            )
        for database in self.databases:
            state_schema_for(self.state_schema, database.name)
            effective = self.for_database(database.name)
            problem = too_short(effective.retention.history, effective.gate_history_floor())
            if problem:
                raise ValueError(f"database {database.name!r}: {problem}")
        return self

    def for_database(self, name: str) -> Settings:
        """The effective settings of database `name`: its url as database_url (and it alone
        as `databases`, so monitored() names it), its tables and check overrides, its state
        schema (state_schema_for), the state database (the first database's when
        state_database_url is unset). Raises ConfigError for an unknown name, ValueError
        for a bad override."""
        if self.database_url is not None and self.databases and self.databases[0].name == name:
            return self  # already this database's own view
        monitored = self.monitored()
        database = next((d for d in monitored if d.name == name), None)
        if database is None:
            raise unknown_database(name, [d.name for d in monitored])
        state_url = self.state_database_url
        if state_url is None and database is not monitored[0]:
            state_url = monitored[0].url  # one state store for every database
        # Not revalidated: the parts are, and `databases` with `database_url` is this
        # one database's own view, not a configuration anyone wrote.
        return self.model_copy(update={
            "database_url": database.url, "databases": (database,),
            "state_database_url": state_url,
            "state_schema": state_schema_for(self.state_schema, name),
            "tables": database.tables or self.tables,
            "checks": effective_checks(self.checks, database.checks, name),
        })  # fmt: skip

    @property
    def database(self) -> DatabaseSettings:
        """The one database these settings are for (one from for_database, or
        DQ_DATABASE_URL's default). Raises ConfigError when there are none or several."""
        monitored = self.monitored()
        if not monitored:
            raise ConfigError(NO_DATABASE)
        if len(monitored) > 1:
            names = ", ".join(d.name for d in monitored)
            raise ConfigError(f"several databases are configured ({names}); name one")
        return monitored[0]

    def monitored(self) -> tuple[DatabaseSettings, ...]:
        """The monitored databases: `databases`, or database_url's one named `default`
        (none when neither is set; commands that need one say so)."""
        if self.databases:
            return self.databases
        if self.database_url is not None:
            return (DatabaseSettings(name=DEFAULT_DATABASE, url=self.database_url),)
        return ()

    @model_validator(mode="after")
    def _routes_name_known_checks(self) -> Settings:
        known = set(self.checks.names())
        unknown_gating = sorted(set(self.gate.checks) - known)
        if unknown_gating:
            raise ValueError(f"gate.checks names unknown checks: {', '.join(unknown_gating)}")
        for route in self.alerts.routes:
            unknown = sorted(set(route.checks or ()) - known)
            if unknown:
                raise ValueError(
                    f"alerts route {route.name!r} names unknown checks: {', '.join(unknown)}"
                )
        problem = too_short(self.retention.history, self.gate_history_floor())
        if problem:
            raise ValueError(problem)
        return self

    def gate_history_floor(self, at: datetime = _REFERENCE) -> timedelta:
        """The least history the state store must keep for the gate (see
        config.gate_history_floor), from gate.checks and the built-in gating checks.

        A cron schedule's interval is the gap after `at`; validation, which has no clock,
        takes a fixed instant (a monthly cron's gaps differ by days, not by the 90d default).
        """
        gating = dict.fromkeys([*BUILTIN_CATALOGUE.gating, *self.gate.checks])
        by_name = {**self.checks.builtins(), **{c.name: c for c in self.checks.custom}}
        intervals = [by_name[n].typical_interval(at) for n in gating if n in by_name]
        return gate_history_floor(self.gate, intervals)

    @field_validator("statement_timeout", "connect_timeout", "query_grace")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        # 0 would mean "no timeout" to PostgreSQL, which a monitor must never run with; a grace
        # under a second would mistake an ordinary network delay for a dead server.
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        # PostgreSQL takes statement_timeout in int4 milliseconds (at most about 24.8 days).
        if value > _LONGEST_TIMEOUT:
            raise ValueError(f"must be at most {format_duration(_LONGEST_TIMEOUT)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        fmt = value.lower()
        if fmt not in LOG_FORMATS:
            raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
        return fmt

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file comes after the environment so that DQ_* overrides it;
        # its path is set on the subclass that load_settings() builds.
        return (
            init_settings,
            env_settings,
            file_secret_settings,
            TomlConfigSettingsSource(settings_cls),
        )
