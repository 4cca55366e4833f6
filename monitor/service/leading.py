"""Per-database leadership over today's one leader lock: its holder leads every database."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.service.leadership import Leadership


class LeadEvery:
    """The interface the service asks (`poll`, `leads`, `release`), over one Leadership.

    The replica that holds the one lock leads every database; the others lead none. Shared
    per-database leadership (monitor.service.leadership.Leaderships) has the same interface
    and replaces this where the service builds it.
    """

    def __init__(self, leadership: Leadership, names: Sequence[str]) -> None:
        self.leadership = leadership
        self.names = frozenset(names)

    def poll(self) -> frozenset[str]:
        """Confirm or take the lock; returns the databases this replica leads now."""
        return self.names if self.leadership.poll() else frozenset()

    def leads(self, name: str) -> bool:
        return name in self.names and self.leadership.is_leader

    @property
    def is_leader(self) -> bool:
        """Whether this replica leads any database."""
        return self.leadership.is_leader

    def release(self) -> None:
        self.leadership.release()
