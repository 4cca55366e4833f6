"""The leader's gate duty: evaluate each plan's gate and publish it for dq_gate_* and `migrate`."""

from __future__ import annotations

import logging

from config import DqError
from monitor.app import App
from monitor.gate import PLANS, Gatekeeper, service_key

log = logging.getLogger(__name__)


def publish_gate_state(app: App) -> None:
    """Evaluate every plan's gate of `app`'s database (sampling pg_stat_statements for
    migration 005's) and store the decision; a failed plan is logged, the others still run."""
    for plan in PLANS:
        try:
            report = Gatekeeper(
                app.settings, app.store, app.primary, app.clock, as_service=True, plan=plan
            ).evaluate()
            # The settings too: a `gate` or `migrate` run elsewhere is held to them.
            app.store.set_service_state(service_key(plan), {
                "decision": report.decision.value,
                "headline": report.headline(),  # what the status page shows
                "clean_since": report.clean_since.isoformat() if report.clean_since else None,
                "required_seconds": report.required.total_seconds(),
                "evaluated_at": report.now.isoformat(),
                "settings": report.settings,
            })  # fmt: skip
        except DqError as exc:
            log.warning("gate evaluation (%s, database %s): %s", plan, app.database, exc)
