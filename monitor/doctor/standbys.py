"""The doctor's items for a database's hot standbys: reachable, in recovery, pgss readable."""

from __future__ import annotations

from pydantic import SecretStr

from config import DqError, Settings, redact
from monitor.db import Inspector, connect, secrets_of, server_address
from monitor.doctor.items import DoctorItem, ok, problem, run_steps, skipped
from monitor.doctor.monitored import MonitoredDiagnosis

_RECOVERY = (
    "SELECT pg_is_in_recovery(),"
    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)
#: What an unreadable standby costs: the gate cannot tell whether readers run there.
UNKNOWN = "the gate's reader evidence stays unknown (never open) until this is fixed"


def standby_items(settings: Settings) -> list[DoctorItem]:
    """Each of the database's standby_urls (`settings` is one database's, for_database): the
    gate samples pg_stat_statements there as on the primary. Raises nothing."""
    database = settings.database
    items: list[DoctorItem] = []
    for index, url in enumerate(database.standby_urls):
        items += _one(settings, url, f"standby_urls[{index}] of database {database.name}")
    return items


def _one(settings: Settings, url: SecretStr, setting: str) -> list[DoctorItem]:
    prefix = f"standby.{server_address(url)}"
    try:
        conn = connect(
            url, purpose="database", connect_timeout=settings.connect_timeout, read_only=True,
            setting=setting,
        )  # fmt: skip
    except DqError as exc:
        return [
            problem(f"{prefix}.connection", redact(str(exc), secrets_of(url)), UNKNOWN),
            skipped(f"{prefix}.skipped", "the other standby items: no connection"),
        ]
    db = Inspector(conn, url, "database")
    try:
        role = str(db.value("SELECT current_user"))
        pgss = MonitoredDiagnosis(db, role, settings)
        steps = [
            (f"{prefix}.recovery", lambda: _recovery(db, prefix)),
            (f"{prefix}.pg_stat_statements",
             lambda: pgss.pgss_items(f"{prefix}.pg_stat_statements")),
        ]  # fmt: skip
        return run_steps(steps, prefix, "standby")
    finally:
        conn.close()


def _recovery(db: Inspector, prefix: str) -> list[DoctorItem]:
    in_recovery, lag = db.rows(_RECOVERY)[0]
    name = f"{prefix}.recovery"
    if not in_recovery:
        return [problem(
            name, "is not a standby (pg_is_in_recovery() is false)",
            "list only hot standbys of this database in standby_urls",
        )]  # fmt: skip
    behind = "nothing replayed yet" if lag is None else f"last replayed commit {lag:.0f}s ago"
    return [ok(name, f"a hot standby in recovery; {behind}")]
