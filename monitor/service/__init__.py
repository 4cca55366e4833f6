"""`dq-monitor run`: scheduler, leadership, HTTP endpoints and the metrics collector."""

from __future__ import annotations

from .periodic import Periodic
from .service import Service, exit_now

__all__ = ["Periodic", "Service", "exit_now"]
