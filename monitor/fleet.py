"""Every monitored database's App, sharing the clock, the state store's pool and one HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from alerts import Clock, http_client
from config import NO_DATABASE, ConfigError, DqError, Settings, unknown_database
from monitor.app import App, open_state, state_setting
from monitor.db import ConnectionSource
from monitor.pipeline import ProgressListener

if TYPE_CHECKING:
    import httpx


@dataclass
class Fleet:
    """One App per monitored database, in configuration order; close() releases them all.

    Each App keeps its role for its one database (its settings, monitored connections, state
    schema, pipeline and outbox); what they share is opened here once: the state database's
    source (one schema per database inside it) and, with several databases, one HTTP client.
    """

    settings: Settings
    apps: dict[str, App]
    state: ConnectionSource
    client: httpx.Client | None = None
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        only: str | None = None,
        state_pool_size: int = 0,
        pool_size: Callable[[str], int] | int = 0,
        per_use: bool = False,
        upgrade: bool = True,
        alerts: bool = True,
        deliver_in_cycle: bool = True,
        console: TextIO | None = None,
        progress: Callable[[str], ProgressListener | None] | None = None,
    ) -> Fleet:
        """Open every database's App (or only the one named `only`), upgrading each one's
        state schema when `upgrade`. `pool_size` is each database's monitored pool size (a
        number, or one per name; `per_use`: none, a connection per use), `progress` makes
        each database's listener.

        Raises ConfigError when no database is configured or `only` names none, and the
        state store's errors (after closing what was opened).
        """
        names = [d.name for d in settings.monitored()]
        if not names:
            raise ConfigError(NO_DATABASE)
        if only is not None:
            if only not in names:
                raise unknown_database(only, names)
            names = [only]
        state = open_state(
            settings.for_database(names[0]), clock, state_pool_size,
            setting=state_setting(settings),
        )  # fmt: skip
        client = (
            http_client(settings.alerts.request_timeout.total_seconds()) if len(names) > 1 else None
        )
        fleet = cls(settings=settings, apps={}, state=state, client=client)
        # Delivery runs in one thread for all databases: one pacing per Slack webhook.
        last_posts: dict[str, float] = {}
        try:
            for name in names:
                fleet.apps[name] = App.open(
                    settings, name, clock=clock, state=state, client=client,
                    last_posts=last_posts,
                    pool_size=pool_size(name) if callable(pool_size) else pool_size,
                    per_use=per_use,
                    upgrade=upgrade, alerts=alerts, deliver_in_cycle=deliver_in_cycle,
                    console=console, progress=progress(name) if progress else None,
                )  # fmt: skip
        except BaseException:
            fleet.close()
            raise
        return fleet

    @property
    def several(self) -> bool:
        """Whether more than one database is configured (output then names each)."""
        return len(self.settings.monitored()) > 1

    def __iter__(self) -> Iterator[App]:
        return iter(self.apps.values())

    def upgrade(self) -> None:
        """Create or upgrade every database's state schema. Raises StoreError/StoreUnavailable."""
        for app in self:
            app.store.upgrade()

    def close(self) -> None:
        """Close every App, then the shared state source and client; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for app in self:
            with suppress(DqError):
                app.close()
        self.state.close()
        if self.client is not None:
            self.client.close()
