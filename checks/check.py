"""The shape every check shares: settings, a snapshot, findings; the probe runs the template."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from config import (
    CheckSettings,
    DatabaseUnavailable,
    DqError,
    QueryFailed,
    QueryTimeout,
    SetupError,
    Severity,
    TablesSettings,
    format_duration,
)

from . import pgerrors
from .ranges import Progress
from .result import Evaluation, Memory, Mode, Sample
from .snapshot import Snapshot, snapshot

#: Partition rows a full sweep reads in one statement (Settings.sweep_chunk_rows).
DEFAULT_CHUNK_ROWS = 10_000_000


@dataclass(frozen=True)
class CheckEnv:
    """The shared settings every check needs besides its own."""

    tables: TablesSettings
    sample_limit: int
    settle_time: dt.timedelta
    statement_timeout: dt.timedelta
    #: Full sweeps over more partition rows than this run in ranges of runs, one statement each.
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    #: Set when the checks run on a hot standby (check_on = "standby"): how far behind the
    #: primary its data may be (checks.replay).
    max_replay_lag: dt.timedelta | None = None


@dataclass(frozen=True)
class Window:
    """Which runs an evaluation covers: all of them, or those changed since `since`.

    `known` (full sweeps only) lists the runs that had findings after the last run. A probe
    may judge those exactly and prove every other run clean with a cheaper whole-table
    signature; None means nothing is known (the first sweep), so every run is screened.

    `memory` holds, by check name, what the probe's checks that keep memory remembered; a
    check missing from it remembers nothing (its first run, or its settings changed).

    `progress`, when given, is told after each range of a sweep split into ranges how many
    of them are done; it shapes no result.
    """

    mode: Mode
    since: dt.datetime | None = None
    known: frozenset[str] | None = None
    memory: Mapping[str, Memory] = field(default_factory=dict)
    progress: Progress | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.mode is Mode.INCREMENTAL) != (self.since is not None):
            raise ValueError("an incremental window needs `since`; a full one must not have it")
        if self.known is not None and self.mode is not Mode.FULL:
            raise ValueError("only a full window takes the runs known to have findings")


@dataclass(frozen=True)
class IndexSpec:
    """An index a check relies on: the table (settings key) and its leading columns."""

    table: str
    columns: tuple[str, ...]
    why: str


# Settings that change how a check is shown or scheduled, not what it finds.
_PRESENTATION_SETTINGS = {
    "enabled", "description", "runbook_url", "severity", "interval", "cron", "remember",
}  # fmt: skip


class Check:
    """One named check: its settings, description, and what it reports about itself."""

    default_description: ClassVar[str] = ""
    #: Sample fields that identify a finding (alert messages diff them); None: the whole sample.
    key_fields: ClassVar[tuple[str, ...] | None] = None
    #: True when the check works per run and supports incremental evaluation.
    incremental: ClassVar[bool] = True
    #: True when the check remembers something between runs: its window then brings the
    #: memory (Window.memory) and its evaluation the changes (Evaluation.memory), which the
    #: state store keeps in the transaction that records the run.
    keeps_memory: ClassVar[bool] = False
    #: True when the store should load only the memory's summary, the check asking for the
    #: entries it needs through Memory.get (a memory too large to load every cycle).
    lazy_memory: ClassVar[bool] = False

    def __init__(self, name: str, settings: CheckSettings, env: CheckEnv) -> None:
        self.name = name
        self.settings = settings
        self.env = env

    @property
    def severity(self) -> Severity:
        return self.settings.severity

    @property
    def description(self) -> str:
        return self.settings.description or self.default_description

    def fingerprint(self) -> str:
        """Changes whenever a setting that shapes the findings changes (forcing a full sweep)."""
        shape = {
            "check": type(self).__name__,
            "settings": self.settings.model_dump(mode="json", exclude=_PRESENTATION_SETTINGS),
            "tables": self.env.tables.model_dump(mode="json"),
            "sample_limit": self.env.sample_limit,
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    def refresh_sample(self, sample: Sample, now: dt.datetime) -> Sample:
        """Bring a carried-forward sample up to date (e.g. an age); most need nothing."""
        return sample

    def indexes(self) -> tuple[IndexSpec, ...]:
        return ()

    def reproduce_sql(self) -> str:
        """A plain query a person can paste into psql to see the findings."""
        return ""


class Probe(ABC):
    """One snapshot transaction that evaluates one or more checks (the template method).

    Subclasses supply `_evaluate`; timing, the transaction, the timeout and error
    translation are done here once.
    """

    checks: tuple[Check, ...]
    env: CheckEnv

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks)

    @property
    def label(self) -> str:
        """The name progress reports use."""
        return ", ".join(self.names)

    @property
    def related(self) -> tuple[str, ...]:
        """Checks whose current findings tell a full sweep of this probe which runs to judge."""
        return self.names

    def evaluate(self, conn: psycopg.Connection[Any], window: Window) -> dict[str, Evaluation]:
        """Evaluate every check of this probe in one snapshot.

        Raises QueryTimeout, DatabaseUnavailable, SetupError (a name or grant is wrong)
        or QueryFailed; all keep the psycopg error as their cause.
        """
        try:
            with snapshot(conn, self.env.statement_timeout, self.env.max_replay_lag) as snap:
                return self._evaluate(snap, window)
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    @abstractmethod
    def _evaluate(self, snap: Snapshot, window: Window) -> dict[str, Evaluation]: ...

    def _translate(self, exc: psycopg.Error) -> DqError:
        who = ", ".join(f'"{n}"' for n in self.names)
        what = pgerrors.describe(exc)
        if pgerrors.is_timeout(exc):
            limit = format_duration(self.env.statement_timeout)
            return QueryTimeout(
                f"check {who}: cancelled after statement_timeout {limit}; create the indexes "
                "`dq-monitor check` recommends or raise DQ_STATEMENT_TIMEOUT"
            )
        if pgerrors.is_connection_loss(exc):
            return DatabaseUnavailable(
                f"check {who}: lost the monitored database: {what}; "
                "check that the server is up and DQ_DATABASE_URL points at it"
            )
        if pgerrors.is_encoding_error(exc):
            return QueryFailed(
                f"check {who}: {what}; a text value in the monitored tables is not valid UTF-8, "
                "which dq-monitor reads text as (a SQL_ASCII database stores any bytes): "
                "correct the value or convert the database to UTF8"
            )
        hint = pgerrors.config_hint(exc)
        if hint == "permission denied":
            return SetupError(
                f"check {who}: {what}; grant SELECT on the monitored tables to the monitor's role"
                ' (see "Database grants" in the README)'
            )
        if hint is not None:
            return SetupError(
                f"check {who}: {what}; set tables.schema_name and the tables.* names in the "
                "config file to match your database (see the Configuration reference in "
                "docs/configuration.md)"
            )
        conflict = _RECOVERY_CONFLICT if pgerrors.is_recovery_conflict(exc) else ""
        return QueryFailed(f"check {who}: {what}{conflict}")


_RECOVERY_CONFLICT = (
    ": the standby replayed WAL the check's snapshot still needed; set hot_standby_feedback = "
    'on or raise max_standby_streaming_delay on the standby (see "Standbys" in docs/operations.md)'
)


class SingleCheckProbe(Check, Probe):
    """A check that is its own probe: one query, one result."""

    def __init__(self, name: str, settings: CheckSettings, env: CheckEnv) -> None:
        super().__init__(name, settings, env)
        self.checks = (self,)

    def _evaluate(self, snap: Snapshot, window: Window) -> dict[str, Evaluation]:
        return {self.name: self.judge(snap, window)}

    @abstractmethod
    def judge(self, snap: Snapshot, window: Window) -> Evaluation: ...
