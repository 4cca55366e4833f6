"""Alerts layer: alert lifecycle, routes, channels and durable delivery (nothing exported yet)."""

from __future__ import annotations

__all__: list[str] = []
