"""Reader evidence from the hot standbys: each one's pg_stat_statements, as on the primary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from alerts import Clock
from config import DatabaseSettings, Settings
from monitor.db import ConnectionSource, Watchdog, reply_limit, server_address
from monitor.store import PRIMARY_SERVER


@dataclass(frozen=True)
class Standby:
    """One standby as the gate reads it: named by host:port (never its URL)."""

    server: str
    source: ConnectionSource


def gated_database(settings: Settings) -> DatabaseSettings | None:
    """The database whose gate this is: the first monitored one (monitor.fleet gives each
    database its own settings)."""
    monitored = settings.monitored()
    return monitored[0] if monitored else None


def open_standbys(settings: Settings, clock: Clock) -> list[Standby]:
    """A single-connection source per standby of the gated database, opened on first use;
    the caller closes them."""
    database = gated_database(settings)
    if database is None:
        return []
    return [
        Standby(
            server_address(url),
            ConnectionSource(
                url,
                purpose="standby",
                setting=f"standby_urls[{i}] of database {database.name}",
                connect_timeout=settings.connect_timeout,
                read_only=True,
                watchdog=Watchdog("standby", reply_limit(settings), clock),
            ),
        )
        for i, url in enumerate(database.standby_urls)
    ]


def unreadable(server: str, why: str) -> dict[str, Any]:
    """A standby whose statistics could not be read: nothing is known about its readers."""
    return {"status": "unknown", "reason": f"standby {server}: {why}"}


def on_standby(server: str, item: dict[str, Any]) -> dict[str, Any]:
    """A standby's own readers verdict, its reason and statements naming the standby."""
    named = dict(item, reason=f"standby {server}: {item['reason']}")
    if "statements" in item:
        named["statements"] = [dict(s, server=server) for s in item["statements"]]
    return named


def combine(primary: dict[str, Any], standbys: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One readers verdict for the database: found if any server found a reader, unknown if
    any server's evidence is unknown (waiting for time only if every unknown one is), else
    none. `servers` keeps each server's own status."""
    if not standbys:
        return primary
    items = [(PRIMARY_SERVER, primary), *standbys]
    servers = {s: {"status": v["status"], "reason": v["reason"]} for s, v in items}
    common = {"servers": servers, "undetectable": primary.get("undetectable")}
    found = [v for _, v in items if v["status"] == "found"]
    if found:
        statements = [s for v in found for s in v.get("statements", [])]
        return {"status": "found", "reason": "; ".join(v["reason"] for v in found),
                "statements": statements[:20], **common}  # fmt: skip
    unknown = [v for _, v in items if v["status"] == "unknown"]
    if unknown:
        combined = {"status": "unknown", "reason": "; ".join(v["reason"] for v in unknown),
                    **common}  # fmt: skip
        if all(v.get("time_only") for v in unknown):
            # Complete once the latest server's coverage is: the same wait, just longer.
            combined["time_only"] = True
            combined["coverage_since"] = max(
                (v["coverage_since"] for v in unknown), key=dt.datetime.fromisoformat
            )
        return combined
    names = ", ".join(s for s, _ in standbys)
    return {"status": "none", "reason": f"{primary['reason']}, on the primary and on the "
            f"standbys {names}", **common}  # fmt: skip
