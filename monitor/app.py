"""Wire the application once: settings -> connections -> state store -> pipeline, outbox."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TextIO

from alerts import AlertBook, Clock, DeliveryReport, OutboxSender, Resender
from alerts.heartbeat import Heartbeat
from config import NO_DATABASE, CheckOn, ConfigError, DatabaseSettings, Settings, url_setting
from monitor.db import ConnectionSource, Watchdog, reply_limit, store_setting
from monitor.pipeline import Pipeline, ProgressListener
from monitor.store import StateStore

if TYPE_CHECKING:
    import httpx


@dataclass
class App:
    """The objects one command needs for one monitored database; close() releases their
    connections (the state source only when this App opened it).

    `primary` is the monitored database's primary (the gate's evidence and migrations); the
    pipeline's source is the primary, or the first standby when the checks run there
    (check_on = "standby").
    """

    settings: Settings  # this database's own (Settings.for_database)
    store: StateStore
    pipeline: Pipeline
    outbox: OutboxSender
    resender: Resender
    heartbeat: Heartbeat
    clock: Clock
    primary: ConnectionSource
    owns_state: bool = True

    @property
    def database(self) -> str:
        """The monitored database's name, its `database` label."""
        return self.settings.database.name

    @classmethod
    def open(
        cls,
        settings: Settings,
        database: str | None = None,
        *,
        clock: Clock,
        state: ConnectionSource | None = None,
        client: httpx.Client | None = None,
        last_posts: dict[str, float] | None = None,
        pool_size: int = 0,
        per_use: bool = False,
        upgrade: bool = True,
        alerts: bool = True,
        deliver_in_cycle: bool = True,
        console: TextIO | None = None,
        progress: ProgressListener | None = None,
    ) -> App:
        """Prepare database `database`'s state store (creating or upgrading its schema),
        pipeline and outbox; None: the only one configured.

        `state` is a state-store source to share (Fleet: one for every database; this App
        then leaves closing it to the caller), `client` an HTTP client and `last_posts` the
        Slack pacing (alerts.OutboxSender) to share.
        `pool_size` > 0 pools connections for a multi-threaded service; 0 keeps one
        connection per database (the CLI); `per_use` opens the monitored database's
        connections per use instead (the service with several databases). `alerts=False`
        records results without advancing alerts, delivering messages or pinging the
        heartbeat. `deliver_in_cycle=False` leaves delivery to the caller (the service's own
        delivery loop). `progress` hears how far each check's evaluation got (Pipeline).
        Raises ConfigError when no database URL is set, for an unknown name, or with several
        databases and no name; StoreUnavailable/StoreError when the state store cannot be
        prepared.
        """
        name = database if database is not None else settings.database.name
        # A `databases` entry's errors name that entry, not DQ_DATABASE_URL.
        listed = bool(settings.databases) and settings.database_url is None
        state_named = state_setting(settings)
        settings = settings.for_database(name)
        url = settings.database_url
        if url is None:
            raise ConfigError(NO_DATABASE)
        owns_state = state is None
        if state is None:
            state = open_state(settings, clock, pool_size, setting=state_named)
        store = StateStore(state, settings.state_schema, settings.sample_limit, clock)
        if upgrade:
            try:
                store.upgrade()
            except BaseException:
                if owns_state:
                    state.close()
                raise
        primary = ConnectionSource(
            url,
            purpose="database",
            setting=url_setting(name, listed),
            connect_timeout=settings.connect_timeout,
            read_only=True,
            pool_size=pool_size,
            per_use=per_use,
            watchdog=Watchdog("database", reply_limit(settings), clock),
        )
        checked = primary
        if settings.database.check_on is CheckOn.STANDBY:
            checked = _standby(settings, settings.database, clock, pool_size, per_use)
        book = AlertBook(settings.alerts, clock, name) if alerts else None
        # One HTTP client for both, made when the first message or ping needs it.
        outbox = OutboxSender(
            store.outbox, settings.alerts, clock, console=console, client=client,
            last_posts=last_posts,
        )  # fmt: skip
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
            owns_state=owns_state,
        )  # fmt: skip

    def deliver(self) -> DeliveryReport:
        """Deliver the due outbox messages, then re-send what fires (see deliver())."""
        return deliver(self.outbox, self.resender)

    def close(self) -> None:
        if self.pipeline.source is not self.primary:
            self.pipeline.source.close()
        self.primary.close()
        if self.owns_state:
            self.store.source.close()
        self.outbox.close()


def _standby(
    settings: Settings, database: DatabaseSettings, clock: Clock, pool_size: int, per_use: bool
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
        per_use=per_use,
        watchdog=Watchdog("standby", reply_limit(settings), clock),
    )


def state_setting(settings: Settings) -> str:
    """The setting that names the state database, for error messages: state_database_url's,
    else the first monitored database's URL (as configured: `settings` before for_database)."""
    if settings.state_database_url is not None or not settings.databases:
        return store_setting(settings)
    return url_setting(settings.databases[0].name, listed=True)


def open_state(
    settings: Settings, clock: Clock, pool_size: int, *, setting: str
) -> ConnectionSource:
    """The state store's source for one database's `settings` (the state database is the
    same for all); `setting` names it in errors (state_setting). Raises ConfigError when no
    URL is set."""
    url = settings.state_database_url or settings.database_url
    if url is None:
        raise ConfigError(NO_DATABASE)
    return ConnectionSource(
        url,
        purpose="state store",
        setting=setting,
        connect_timeout=settings.connect_timeout,
        pool_size=pool_size,
        watchdog=Watchdog("state store", reply_limit(settings), clock),
    )


def deliver(outbox: OutboxSender, resender: Resender) -> DeliveryReport:
    """The outbox's due messages, then the re-sends to Alertmanager, in this one thread: so a
    re-send never overtakes a resolved message (alerts.Resender). Raises the store's errors."""
    report = outbox.deliver_due()
    resender.resend_due()
    return report
