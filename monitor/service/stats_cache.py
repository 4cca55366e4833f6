"""What a replica last read from the state store, reloaded by the refresh loop, kept if it fails."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from alerts import Clock
from config import DqError
from monitor.store import StateStore, StoreStats, TrendBucket

log = logging.getLogger(__name__)

# The 24 h trends move by half-hour buckets: reading them (every check's runs of a day, the
# costliest read of the snapshot) once a minute rather than every metrics refresh is enough.
TREND_REFRESH_SECONDS = 60.0


@dataclass
class StatsSnapshot:
    """What a replica last read from the state store."""

    stats: StoreStats = field(default_factory=StoreStats)
    loaded_at: float = 0.0
    # The status page's 24 h trend per check, and the state database's now() it ends at.
    trends: dict[str, tuple[TrendBucket, ...]] = field(default_factory=dict)
    trends_at: dt.datetime | None = None


class StatsCache:
    """Reloads the state store's per-check stats; keeps the last good copy while it is down."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.snapshot = StatsSnapshot()
        self.store_up = False
        self._trends_read: float | None = None  # monotonic

    def refresh(self) -> bool:
        """Reload; returns whether the state store answered."""
        try:
            stats = self.store.stats()
            trends, trends_at = self.snapshot.trends, self.snapshot.trends_at
            now = self.clock.monotonic()
            if self._trends_read is None or now - self._trends_read >= TREND_REFRESH_SECONDS:
                trends_at, trends = self.store.trends()
                self._trends_read = now
        except DqError as exc:
            if self.store_up:
                log.warning("%s; serving the last known metrics", exc)
            self.store_up = False
            return False
        self.snapshot = StatsSnapshot(
            stats=stats, loaded_at=self.clock.now().timestamp(), trends=trends,
            trends_at=trends_at,
        )  # fmt: skip
        self.store_up = True
        return True
