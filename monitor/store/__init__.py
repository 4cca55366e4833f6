"""The state store: dq-monitor's own tables; the only package that runs SQL on them."""

from monitor.store.tables import STATE_TABLES, qualified

__all__ = ["STATE_TABLES", "qualified"]
