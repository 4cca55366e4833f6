"""The state store, the only code that reads or writes dq-monitor's own schema."""

from __future__ import annotations

from .rows import (
    DURATION_BUCKETS,
    CheckStats,
    DeliveryStats,
    RouteDelivery,
    Silence,
    StoreStats,
)
from .state_store import StateStore
from .tables import STATE_TABLES, qualified

__all__ = [
    "DURATION_BUCKETS",
    "STATE_TABLES",
    "CheckStats",
    "DeliveryStats",
    "RouteDelivery",
    "Silence",
    "StateStore",
    "StoreStats",
    "qualified",
]
