"""What a check finds: frozen, JSON-ready data; a violation is a result, never an exception."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

from config import Severity

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
Sample: TypeAlias = dict[str, JsonValue]


class Status(StrEnum):
    OK = "ok"
    VIOLATION = "violation"
    ERROR = "error"


class Mode(StrEnum):
    INCREMENTAL = "incremental"
    FULL = "full"


@dataclass(frozen=True)
class RunFindings:
    """Violations found in one run (run_key '' for checks that do not work per run)."""

    run_key: str
    violations: int
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class Memory:
    """What a check that keeps memory (Check.keeps_memory) remembered after its last run:
    JSON values by key, kept by the state store without knowing what they mean."""

    entries: Mapping[str, JsonValue] = field(default_factory=dict)
    #: A small summary kept beside the entries and always loaded whole (MemoryUpdate.summary_*).
    summary: Mapping[str, JsonValue] = field(default_factory=dict)
    #: For a check with `lazy_memory`: the store's lookup of entries by key (None: every
    #: entry), since loading them all each cycle would cost what the memory's size costs.
    #: `entries` is then empty.
    lookup: Callable[[Collection[str] | None], Mapping[str, JsonValue]] | None = field(
        default=None, compare=False, repr=False
    )

    def get(self, keys: Collection[str] | None = None) -> Mapping[str, JsonValue]:
        """The entries of `keys` that exist (None: every entry), from the store if lazy."""
        if self.lookup is not None:
            return self.lookup(keys)
        if keys is None:
            return self.entries
        return {k: self.entries[k] for k in keys if k in self.entries}


@dataclass(frozen=True)
class MemoryUpdate:
    """How an evaluation changes its check's memory, key by key (a cycle touches only the
    keys that changed). `replace` forgets every key first: a new baseline. Then the keys of
    `put` are set and those of `drop` forgotten."""

    put: Mapping[str, JsonValue] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    replace: bool = False
    #: The summary's change, key by key like put and drop (`replace` forgets it too).
    summary_put: Mapping[str, JsonValue] = field(default_factory=dict)
    summary_drop: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.drop & self.put.keys() or self.summary_drop & self.summary_put.keys():
            raise ValueError("a key cannot be both put and dropped")


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation judged and found, before it is merged with carried-forward findings.

    `judged` lists the runs re-judged now; None means every run except `unsettled`,
    whose findings from earlier evaluations stay as they are.
    """

    mode: Mode
    snapshot_at: dt.datetime
    watermark: dt.datetime
    findings: tuple[RunFindings, ...]
    judged: frozenset[str] | None = None
    unsettled: frozenset[str] = frozenset()
    #: The check's new memory (checks that keep memory only); None leaves it as it was.
    memory: MemoryUpdate | None = None
    note: str | None = None
    #: Findings judged before this time are dropped (findings that expire rather than clear).
    expire_before: dt.datetime | None = None
    #: How a full sweep picked the runs it judged exactly: "signature" (the known runs, the
    #: rest proven clean by a whole-table signature) or "per-run" (every run screened).
    screen: str | None = None

    @property
    def judged_count(self) -> int | None:
        return None if self.judged is None else len(self.judged)


@dataclass(frozen=True)
class CheckResult:
    """The whole database's state for one check after a run; what every report shows."""

    check: str
    status: Status
    severity: Severity
    violations: int
    samples: tuple[Sample, ...]
    duration_seconds: float
    mode: Mode
    started_at: dt.datetime
    finished_at: dt.datetime
    error: str | None = None
    description: str = ""
    note: str | None = None
    run_id: int | None = None
    #: For an error result, the error's kind (`DqError.kind`, e.g. "unavailable").
    error_kind: str | None = None

    def as_json(self) -> dict[str, JsonValue]:
        """The CLI's JSON contract for one check run."""
        return {
            "check": self.check,
            "status": self.status.value,
            "severity": self.severity.value,
            "violations": self.violations,
            "samples": [dict(s) for s in self.samples],
            "duration_seconds": round(self.duration_seconds, 6),
            "error": self.error,
            "mode": self.mode.value,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "description": self.description,
            "note": self.note,
        }


#: JSON has no NaN or Infinity (psycopg's Json would write them and PostgreSQL refuse the
#: document), so non-finite numbers are recorded as these strings, as JavaScript spells them.
NON_FINITE_NOTE = "NaN, Infinity and -Infinity are recorded as strings (JSON has no such numbers)"


def to_json_value(value: object) -> JsonValue:  # noqa: PLR0911 - one branch per type
    """Turn a value read from PostgreSQL into plain JSON (ids stay ints where they are ints).

    Non-finite numbers become the strings "NaN", "Infinity" and "-Infinity".
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _finite_or_text(value)
    if isinstance(value, decimal.Decimal):
        if value.is_nan():  # PostgreSQL numeric has NaN and, since 14, infinities
            return "NaN"
        if value.is_infinite():
            return "-Infinity" if value.is_signed() else "Infinity"
        if value == value.to_integral_value():
            return int(value)
        number = float(value)
        return number if math.isfinite(number) else str(value)  # beyond a float's range
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def has_non_finite(value: object) -> bool:
    """Whether a value read from PostgreSQL holds a NaN or an infinity (arrays searched)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, decimal.Decimal):
        return not value.is_finite()
    if isinstance(value, list | tuple):
        return any(has_non_finite(v) for v in value)
    return False


def _finite_or_text(number: float) -> float | str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def run_key(value: object) -> str:
    """The text form of a run id, used to key carried-forward findings."""
    return str(value)
