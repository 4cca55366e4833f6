"""The application: CLI, runner, state store (and, later, scheduler, metrics server and gate)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
