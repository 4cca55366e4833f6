"""Connections to the monitored and the state database: targets, pools, watchdog, inspection."""

from __future__ import annotations

from .connections import ConnectionSource, connect
from .inspector import Inspector
from .targets import (
    Target,
    safe_target,
    secrets_of,
    server_address,
    store_setting,
    translate,
)
from .watchdog import Watchdog, WatchedConnection, reply_limit

__all__ = [
    "ConnectionSource",
    "Inspector",
    "Target",
    "Watchdog",
    "WatchedConnection",
    "connect",
    "reply_limit",
    "safe_target",
    "secrets_of",
    "server_address",
    "store_setting",
    "translate",
]
