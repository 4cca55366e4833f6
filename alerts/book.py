"""Apply recorded check results to each route's alert, queueing the messages they call for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

from checks import Check, CheckResult, Status
from config import DEFAULT_DATABASE, AlertsSettings

from .clock import Clock
from .lifecycle import Alert, Observation, advance, fingerprint
from .notification import Notification


class AlertRecords(Protocol):
    """The alert rows, inside the transaction that records a check run (the state store
    implements it), so a message is queued exactly when the state change behind it commits."""

    def silenced(self, check: str, now: dt.datetime) -> bool:
        """Whether a silence covers `check` at `now`."""

    def load(self, fingerprints: Sequence[str]) -> Mapping[str, Alert]:
        """The stored alerts among `fingerprints`, locked until the transaction ends."""

    def save(self, alert: Alert) -> None:
        """Store `alert`'s new state."""

    def enqueue(self, message: Notification, now: dt.datetime) -> None:
        """Queue `message` for delivery, due at `now`."""


class AlertBook:
    """Turns one database's recorded check results into alert state changes and outbox
    messages."""

    def __init__(
        self, settings: AlertsSettings, clock: Clock, database: str = DEFAULT_DATABASE
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.database = database

    def apply(self, records: AlertRecords, check: Check, result: CheckResult) -> int:
        """Advance the check's alerts on every route that wants it; returns messages queued."""
        if result.status is Status.ERROR:
            return 0  # could not evaluate: neither failing nor clean (DqCheckErroring covers it)
        routes = [r for r in self.settings.routes if r.wants(check.name, check.severity)]
        if not routes:
            return 0
        now = self.clock.now()
        silenced = records.silenced(check.name, now)
        states = records.load([fingerprint(check.name, r.name, self.database) for r in routes])
        obs = Observation(
            check=check.name, run_id=result.run_id or 0, ok=result.status is Status.OK,
            severity=check.severity, violations=result.violations, samples=result.samples,
            key_fields=check.key_fields, description=check.description,
            reproduce_sql=check.reproduce_sql(), runbook_url=check.settings.runbook_url,
            at=result.finished_at, database=self.database,
        )  # fmt: skip
        queued = 0
        for route in routes:
            previous = states.get(fingerprint(check.name, route.name, self.database))
            alert, message = advance(
                previous, obs, route, self.settings, silenced=silenced, now=now
            )
            records.save(alert)
            if message is not None:
                records.enqueue(message, now)
                queued += 1
        return queued
