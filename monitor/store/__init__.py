"""The state store, the only code that reads or writes dq-monitor's own schema."""

from __future__ import annotations

from .audit import AppliedMigration, AuditStart, MigrationAudit
from .gate_history import GateHistory, RunRecord
from .outbox_admin import UNDELIVERED, OutboxEntry, Retried
from .pgss_samples import PRIMARY_SERVER, Counters, PgssSamples, Sample
from .recent import TREND_BUCKETS, TREND_WINDOW
from .retention import PRUNED, PruneResult
from .retention import SERVICE_KEY as RETENTION_KEY
from .rows import (
    DURATION_BUCKETS,
    CheckStats,
    DeliveryStats,
    LatestRun,
    RouteDelivery,
    Silence,
    StoreStats,
    TrendBucket,
)
from .schema import LATEST_VERSION, installed_version
from .silences import Silences
from .state_store import StateStore
from .tables import STATE_TABLES, qualified

__all__ = [
    "DURATION_BUCKETS",
    "LATEST_VERSION",
    "PRIMARY_SERVER",
    "PRUNED",
    "RETENTION_KEY",
    "STATE_TABLES",
    "TREND_BUCKETS",
    "TREND_WINDOW",
    "UNDELIVERED",
    "AppliedMigration",
    "AuditStart",
    "CheckStats",
    "Counters",
    "DeliveryStats",
    "GateHistory",
    "LatestRun",
    "MigrationAudit",
    "OutboxEntry",
    "PgssSamples",
    "PruneResult",
    "Retried",
    "RouteDelivery",
    "RunRecord",
    "Sample",
    "Silence",
    "Silences",
    "StateStore",
    "StoreStats",
    "TrendBucket",
    "installed_version",
    "qualified",
]
