"""`dq-monitor run`: scheduler, leadership, HTTP endpoints and the metrics collector."""

from __future__ import annotations

from .service import Service, exit_now

__all__ = ["Service", "exit_now"]
