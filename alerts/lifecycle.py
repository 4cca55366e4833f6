"""The alert lifecycle per check and route: inactive, pending, firing (with reminders), resolved.

Pure: the previous state and one check result in, the next state and at most one message
out. The state store persists both in the transaction that records the check run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum

from checks import JsonValue, Sample
from config import DEFAULT_DATABASE, AlertsSettings, RouteSettings, Severity

from .labels import dashboard_link
from .notification import Kind, Notification


class State(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class Alert:
    """One alert: a check on a route, and what its last message said."""

    fingerprint: str
    check: str
    route: str
    state: State = State.INACTIVE
    failing_runs: int = 0
    active_since: dt.datetime | None = None
    last_sent_at: dt.datetime | None = None
    last_sent_kind: Kind | None = None
    last_keys: tuple[dict[str, JsonValue], ...] = ()
    last_violations: int = 0

    @property
    def notified(self) -> bool:
        """Whether the current firing episode has been announced (not silenced away)."""
        return (
            self.state is State.FIRING
            and self.last_sent_kind in (Kind.FIRING, Kind.REMINDER)
            and self.last_sent_at is not None
            and self.active_since is not None
            and self.last_sent_at >= self.active_since
        )


@dataclass(frozen=True)
class Observation:
    """What the alert needs from one recorded check run."""

    check: str
    run_id: int
    ok: bool
    severity: Severity
    violations: int
    samples: tuple[Sample, ...]
    key_fields: tuple[str, ...] | None
    description: str
    reproduce_sql: str
    runbook_url: str | None
    at: dt.datetime
    database: str = DEFAULT_DATABASE


def fingerprint(check: str, route: str, database: str = DEFAULT_DATABASE) -> str:
    """Stable identity of the alert for a check on a route on a database. The database named
    `default` adds nothing, so a single-database install keeps its alerts' identities."""
    where = "" if database == DEFAULT_DATABASE else f"\x00{database}"
    text = f"dq-monitor\x00{check}\x00{route}{where}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sample_keys(
    samples: tuple[Sample, ...], key_fields: tuple[str, ...] | None
) -> tuple[dict[str, JsonValue], ...]:
    """The identifying part of each sample, in order, without duplicates."""
    keys: list[dict[str, JsonValue]] = []
    for sample in samples:
        key = dict(sample) if key_fields is None else {f: sample.get(f) for f in key_fields}
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def advance(  # noqa: PLR0911 - one return per lifecycle transition reads best
    alert: Alert | None,
    obs: Observation,
    route: RouteSettings,
    settings: AlertsSettings,
    *,
    silenced: bool,
    now: dt.datetime,
) -> tuple[Alert, Notification | None]:
    """The alert after `obs`, and the message to send now (None: nothing to say)."""
    current = alert or Alert(
        fingerprint(obs.check, route.name, obs.database), obs.check, route.name
    )
    keys = sample_keys(obs.samples, obs.key_fields)
    if not obs.ok:
        failing = current.failing_runs + 1
        since = current.active_since or now
        if current.state is State.FIRING:
            due = not current.notified or (
                current.last_sent_at is not None
                and now - current.last_sent_at >= settings.repeat_interval
            )
            kind = Kind.REMINDER if current.notified else Kind.FIRING
            nxt = replace(current, failing_runs=failing)
            if not due or silenced:
                return nxt, None
            return _sent(nxt, kind, obs, keys, settings=settings, now=now)
        if failing >= settings.pending_runs(obs.severity):
            nxt = replace(current, state=State.FIRING, failing_runs=failing, active_since=since)
            if silenced:
                return nxt, None
            return _sent(nxt, Kind.FIRING, obs, keys, settings=settings, now=now)
        return replace(current, state=State.PENDING, failing_runs=failing, active_since=since), None
    cleared = replace(current, state=State.INACTIVE, failing_runs=0, active_since=None)
    if current.notified and route.send_resolved and not silenced:
        ended = replace(cleared, active_since=current.active_since)
        resolved, message = _sent(ended, Kind.RESOLVED, obs, (), settings=settings, now=now)
        return replace(resolved, active_since=None), message
    return cleared, None


def _sent(
    alert: Alert,
    kind: Kind,
    obs: Observation,
    keys: tuple[dict[str, JsonValue], ...],
    *,
    settings: AlertsSettings,
    now: dt.datetime,
) -> tuple[Alert, Notification]:
    previous = alert.last_keys if alert.last_sent_kind is not Kind.RESOLVED else ()
    assert alert.active_since is not None
    message = Notification(
        kind=kind,
        check=obs.check,
        route=alert.route,
        fingerprint=alert.fingerprint,
        idempotency_key=f"{alert.fingerprint}-{kind.value}-{obs.run_id}",
        severity=obs.severity,
        description=obs.description,
        violations=obs.violations,
        previous_violations=alert.last_violations if previous else 0,
        active_since=alert.active_since,
        created_at=now,
        new_keys=tuple(k for k in keys if k not in previous),
        still_failing_keys=tuple(k for k in keys if k in previous),
        fixed_keys=tuple(k for k in previous if k not in keys),
        samples=obs.samples,
        reproduce_sql=obs.reproduce_sql if kind is not Kind.RESOLVED else "",
        runbook_url=obs.runbook_url,
        dashboard_url=dashboard_link(settings.dashboard_url, obs.check, obs.database),
        external_url=settings.external_url,
        ended_at=now if kind is Kind.RESOLVED else None,
        database=obs.database,
    )
    updated = replace(
        alert, last_sent_at=now, last_sent_kind=kind, last_keys=keys,
        last_violations=obs.violations,
    )  # fmt: skip
    return updated, message
