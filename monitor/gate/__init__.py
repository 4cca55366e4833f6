"""The column-removal gate: evidence, the verdict and its report, and the guarded migration."""

from __future__ import annotations

from .gatekeeper import Gatekeeper
from .migration import Migrator
from .plans import Plan, make_plan
from .report import RENDERERS, render_json, render_markdown, render_text
from .verdict import Decision, GateReport

__all__ = [
    "RENDERERS",
    "Decision",
    "GateReport",
    "Gatekeeper",
    "Migrator",
    "Plan",
    "make_plan",
    "render_json",
    "render_markdown",
    "render_text",
]
