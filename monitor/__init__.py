"""The application: one check cycle (pipeline) and the subpackages that serve it, by role."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
