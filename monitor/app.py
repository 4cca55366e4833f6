"""Wire the application once: settings -> connections -> state store -> runner."""

from __future__ import annotations

from dataclasses import dataclass

from config import ConfigError, Settings

from .database import ConnectionSource
from .runner import Runner
from .store import StateStore


@dataclass
class App:
    """The objects one command needs; close() releases their connections."""

    settings: Settings
    store: StateStore
    runner: Runner

    @classmethod
    def open(cls, settings: Settings, *, pool_size: int = 0, upgrade: bool = True) -> App:
        """Prepare the state store (creating or upgrading its schema) and a runner.

        `pool_size` > 0 pools connections for a multi-threaded service; 0 keeps one
        connection per database (the CLI). Raises ConfigError when no database URL is set,
        StoreUnavailable/StoreError when the state store cannot be prepared.
        """
        if settings.database_url is None:
            raise ConfigError(
                "DQ_DATABASE_URL is not set; set it (or database_url in the config file) to the "
                "monitored database's URL"
            )
        state = ConnectionSource(
            settings.state_database_url or settings.database_url,
            purpose="state store",
            connect_timeout=settings.connect_timeout,
            pool_size=pool_size,
        )
        store = StateStore(state, settings.state_schema, settings.sample_limit)
        if upgrade:
            try:
                store.upgrade()
            except BaseException:
                state.close()
                raise
        monitored = ConnectionSource(
            settings.database_url,
            purpose="database",
            connect_timeout=settings.connect_timeout,
            read_only=True,
            pool_size=pool_size,
        )
        return cls(settings=settings, store=store, runner=Runner(settings, store, monitored))

    def close(self) -> None:
        self.runner.source.close()
        self.store.source.close()
