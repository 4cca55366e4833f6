"""`/api/checks/<check>/latest`: a check's latest result and its samples as JSON, from memory."""

from __future__ import annotations

import json
from typing import Any

from config import DEFAULT_DATABASE, redact
from monitor.service.metrics import DatabaseViews

PREFIX, SUFFIX = "/api/checks/", "/latest"


def check_in_path(path: str) -> str | None:
    """The check named by a `/api/checks/<check>/latest` path (its name may hold a /)."""
    if path.startswith(PREFIX) and path.endswith(SUFFIX) and len(path) > len(PREFIX + SUFFIX):
        return path[len(PREFIX) : -len(SUFFIX)]
    return None


def latest_result(
    views: DatabaseViews, secrets: dict[str, list[str]], check: str, database: str | None
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body): the check's latest run that ran as the state store recorded
    it (samples capped by sample_limit, as recorded), or a one-line error."""
    if database is None:
        if len(views) > 1:
            return 400, {"error": f"several databases are monitored: add ?database=NAME "
                         f"(one of {', '.join(views)})"}  # fmt: skip
        database = next(iter(views), DEFAULT_DATABASE)
    view = views.get(database)
    if view is None:
        return 404, {"error": f"unknown database {database!r}; the databases are: "
                     f"{', '.join(views)}"}  # fmt: skip
    configured = {c.name: c for c in view.checks}
    if check not in configured:
        return 404, {"error": f"unknown check {check!r} in database {database!r}; the checks "
                     f"are: {', '.join(configured)}"}  # fmt: skip
    snapshot = view.cache.snapshot.stats
    stats, latest = snapshot.check(check), snapshot.latest.get(check)
    body: dict[str, Any] = {
        "database": database,
        "check": check,
        "severity": configured[check].severity.value,
        "status": latest.status if latest else "not_run",
        "violations": latest.violations if latest else None,
        "error": redact(latest.error, secrets[database]) if latest and latest.error else None,
        "error_kind": latest.error_kind if latest else None,
        "mode": latest.mode if latest else None,
        "started_at": latest.started_at.isoformat() if latest else None,
        "finished_at": latest.finished_at.isoformat() if latest else None,
        "note": latest.note if latest else None,
        "last_success_at": stats.last_success_at.isoformat() if stats.last_success_at else None,
        "samples": list(latest.samples) if latest else [],
        "sample_limit": view.settings.sample_limit,
        "state_store_up": view.cache.store_up,
    }
    return 200, body


def json_body(body: dict[str, Any]) -> bytes:
    # Samples hold the table's values as the check recorded them (JSON already); default=str
    # is for anything else a custom check's sample may carry.
    return (json.dumps(body, indent=2, default=str) + "\n").encode()
