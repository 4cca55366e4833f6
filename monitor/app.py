"""Wire the application once: settings -> connections -> state store -> pipeline, outbox."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TextIO

from alerts import AlertBook, Clock, DeliveryReport, OutboxSender, Resender
from alerts.heartbeat import Heartbeat
from config import CheckOn, ConfigError, DatabaseSettings, Settings
from monitor.db import ConnectionSource, Watchdog, reply_limit, store_setting
from monitor.pipeline import Pipeline, ProgressListener
from monitor.store import StateStore


@dataclass
class App:
    """The objects one command needs; close() releases their connections.

    `primary` is the monitored database's primary (the gate's evidence and migrations); the
    pipeline's source is the primary, or the first standby when the checks run there
    (check_on = "standby").
    """

    settings: Settings
    store: StateStore
    pipeline: Pipeline
    outbox: OutboxSender
    resender: Resender
    heartbeat: Heartbeat
    clock: Clock
    primary: ConnectionSource

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        pool_size: int = 0,
        upgrade: bool = True,
        alerts: bool = True,
        deliver_in_cycle: bool = True,
        console: TextIO | None = None,
        progress: ProgressListener | None = None,
    ) -> App:
        """Prepare the state store (creating or upgrading its schema), pipeline and outbox.

        `pool_size` > 0 pools connections for a multi-threaded service; 0 keeps one
        connection per database (the CLI). `alerts=False` records results without
        advancing alerts, delivering messages or pinging the heartbeat. `deliver_in_cycle=False`
        leaves delivery to the caller (the service's own delivery loop). Raises ConfigError
        when no database URL is set, StoreUnavailable/StoreError when the state store cannot
        be prepared. `progress` hears how far each check's evaluation got (Pipeline).
        """
        monitored = settings.monitored()
        if not monitored:
            raise ConfigError(
                "DQ_DATABASE_URL is not set; set it (or database_url in the config file) to the "
                "monitored database's URL"
            )
        database = monitored[0]  # monitor.fleet opens one App per database
        state = ConnectionSource(
            settings.state_database_url or database.url,
            purpose="state store",
            setting=store_setting(settings),
            connect_timeout=settings.connect_timeout,
            pool_size=pool_size,
            watchdog=Watchdog("state store", reply_limit(settings), clock),
        )
        store = StateStore(state, settings.state_schema, settings.sample_limit, clock)
        if upgrade:
            try:
                store.upgrade()
            except BaseException:
                state.close()
                raise
        primary = ConnectionSource(
            database.url,
            purpose="database",
            connect_timeout=settings.connect_timeout,
            read_only=True,
            pool_size=pool_size,
            watchdog=Watchdog("database", reply_limit(settings), clock),
        )
        checked = primary
        if database.check_on is CheckOn.STANDBY:
            checked = _standby(settings, database, clock, pool_size)
        book = AlertBook(settings.alerts, clock) if alerts else None
        # One HTTP client for both, made when the first message or ping needs it.
        outbox = OutboxSender(store.outbox, settings.alerts, clock, console=console)
        resender = Resender(store.firing_alerts, settings.alerts, clock, lambda: outbox.client)
        heartbeat = Heartbeat(settings.alerts.heartbeat_url, lambda: outbox.client, clock)
        pipeline = Pipeline(
            settings, store, checked, clock, alerts=book,
            deliver=partial(deliver, outbox, resender) if alerts and deliver_in_cycle else None,
            heartbeat=heartbeat if alerts else None, progress=progress,
        )  # fmt: skip
        return cls(
            settings=settings, store=store, pipeline=pipeline, outbox=outbox,
            resender=resender, heartbeat=heartbeat, clock=clock, primary=primary,
        )  # fmt: skip

    def deliver(self) -> DeliveryReport:
        """Deliver the due outbox messages, then re-send what fires (see deliver())."""
        return deliver(self.outbox, self.resender)

    def close(self) -> None:
        if self.pipeline.source is not self.primary:
            self.pipeline.source.close()
        self.primary.close()
        self.store.source.close()
        self.outbox.close()


def _standby(
    settings: Settings, database: DatabaseSettings, clock: Clock, pool_size: int
) -> ConnectionSource:
    """The first standby, where the checks run with check_on = "standby" (the gate reads
    every standby's statistics on connections of its own: monitor.gate.standbys)."""
    return ConnectionSource(
        database.standby_urls[0],
        purpose="standby",
        setting=f"standby_urls[0] of database {database.name}",
        connect_timeout=settings.connect_timeout,
        read_only=True,
        pool_size=pool_size,
        watchdog=Watchdog("standby", reply_limit(settings), clock),
    )


def deliver(outbox: OutboxSender, resender: Resender) -> DeliveryReport:
    """The outbox's due messages, then the re-sends to Alertmanager, in this one thread: so a
    re-send never overtakes a resolved message (alerts.Resender). Raises the store's errors."""
    report = outbox.deliver_due()
    resender.resend_due()
    return report
