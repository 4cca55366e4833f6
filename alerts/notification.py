"""What an alert message says: one frozen, channel-neutral notification."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from checks import JsonValue, Sample
from config import DEFAULT_DATABASE, Severity, count


class Kind(StrEnum):
    """Why a message is sent."""

    FIRING = "firing"  # the check started failing (after its pending runs)
    REMINDER = "reminder"  # still failing, repeat_interval after the last message
    RESOLVED = "resolved"  # a clean run after firing
    TEST = "test"  # `dq-monitor alerts test`


@dataclass(frozen=True)
class Notification:
    """Everything any channel needs to render one alert message.

    Keys are the identifying columns of samples (e.g. run_id, partition_id), compared with
    the keys of the previous message on the same alert: new, still failing and fixed.
    """

    kind: Kind
    check: str
    route: str
    fingerprint: str
    idempotency_key: str
    severity: Severity
    description: str
    violations: int
    previous_violations: int
    active_since: dt.datetime
    created_at: dt.datetime
    new_keys: tuple[dict[str, JsonValue], ...] = ()
    still_failing_keys: tuple[dict[str, JsonValue], ...] = ()
    fixed_keys: tuple[dict[str, JsonValue], ...] = ()
    samples: tuple[Sample, ...] = ()
    reproduce_sql: str = ""
    runbook_url: str | None = None
    dashboard_url: str | None = None
    external_url: str | None = None  # alerts.external_url: this dq-monitor's status page
    ended_at: dt.datetime | None = None
    extra: dict[str, JsonValue] = field(default_factory=dict)
    database: str = DEFAULT_DATABASE  # the monitored database the check ran on

    @property
    def subject(self) -> str:
        """The check, and its database unless it is the single-database `default`."""
        if self.database == DEFAULT_DATABASE:
            return self.check
        return f"{self.check} (database {self.database})"

    @property
    def title(self) -> str:
        """One line: what happened to which check."""
        verb = {
            Kind.FIRING: "is failing",
            Kind.REMINDER: "is still failing",
            Kind.RESOLVED: "is resolved",
            Kind.TEST: "test message",
        }[self.kind]
        n = f" ({count(self.violations, 'violation')})" if self.kind is not Kind.RESOLVED else ""
        return f"[{self.severity.value.upper()}] {self.subject} {verb}{n}"

    def to_json(self) -> dict[str, JsonValue]:
        """A JSON form stored in the outbox; from_json() reads it back."""
        return {
            "kind": self.kind.value, "check": self.check, "route": self.route,
            "fingerprint": self.fingerprint, "idempotency_key": self.idempotency_key,
            "severity": self.severity.value, "description": self.description,
            "violations": self.violations, "previous_violations": self.previous_violations,
            "active_since": self.active_since.isoformat(),
            "created_at": self.created_at.isoformat(),
            "new_keys": list(self.new_keys), "still_failing_keys": list(self.still_failing_keys),
            "fixed_keys": list(self.fixed_keys), "samples": list(self.samples),
            "reproduce_sql": self.reproduce_sql, "runbook_url": self.runbook_url,
            "dashboard_url": self.dashboard_url, "external_url": self.external_url,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "extra": self.extra, "database": self.database,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> Notification:
        def when(key: str) -> dt.datetime | None:
            value = data.get(key)
            return dt.datetime.fromisoformat(value) if isinstance(value, str) else None

        def keys(key: str) -> tuple[dict[str, JsonValue], ...]:
            value = data.get(key) or []
            assert isinstance(value, list)
            return tuple(v for v in value if isinstance(v, dict))

        active, created = when("active_since"), when("created_at")
        assert active is not None
        assert created is not None
        return cls(
            kind=Kind(str(data["kind"])), check=str(data["check"]), route=str(data["route"]),
            fingerprint=str(data["fingerprint"]), idempotency_key=str(data["idempotency_key"]),
            severity=Severity(str(data["severity"])), description=str(data["description"]),
            violations=int(str(data["violations"])),
            previous_violations=int(str(data["previous_violations"])),
            active_since=active, created_at=created, new_keys=keys("new_keys"),
            still_failing_keys=keys("still_failing_keys"), fixed_keys=keys("fixed_keys"),
            samples=keys("samples"), reproduce_sql=str(data.get("reproduce_sql") or ""),
            runbook_url=_opt(data.get("runbook_url")),
            dashboard_url=_opt(data.get("dashboard_url")),
            external_url=_opt(data.get("external_url")),
            ended_at=when("ended_at"),
            extra=data["extra"] if isinstance(data.get("extra"), dict) else {},  # type: ignore[arg-type]
            # Rows queued before several databases existed have no database: theirs is default.
            database=str(data.get("database") or DEFAULT_DATABASE),
        )  # fmt: skip


def _opt(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None
