"""Wire the application once: settings -> connections -> state store -> runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from config import ConfigError, Settings

from .database import connect
from .runner import Runner
from .store import StateStore


@dataclass
class App:
    """The objects one command needs; close() releases both connections."""

    settings: Settings
    store: StateStore
    runner: Runner

    @classmethod
    def open(cls, settings: Settings) -> App:
        """Connect to the state store (creating or upgrading its schema) and prepare a runner.

        Raises ConfigError when no database URL is set, StoreUnavailable/StoreError otherwise.
        """
        if settings.database_url is None:
            raise ConfigError(
                "DQ_DATABASE_URL is not set; set it (or database_url in the config file) to the "
                "monitored database's URL"
            )
        database_url = settings.database_url
        state_url = settings.state_database_url or database_url
        state_conn = connect(
            state_url, purpose="state store", connect_timeout=settings.connect_timeout
        )
        store = StateStore(state_conn, settings.state_schema, settings.sample_limit)
        try:
            store.upgrade()
        except BaseException:
            state_conn.close()
            raise

        def monitored() -> psycopg.Connection[Any]:
            return connect(
                database_url,
                purpose="database",
                connect_timeout=settings.connect_timeout,
                read_only=True,
            )

        return cls(settings=settings, store=store, runner=Runner(settings, store, monitored))

    def close(self) -> None:
        self.runner.close()
        self.store.conn.close()
