"""The migration gate: named plans, their evidence, the verdict, its report, the guarded runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.lazy import lazy_exports

if TYPE_CHECKING:
    from .flags_migration import ConstraintMigrator
    from .flags_plan import ConstraintPlan, make_constraint_plan
    from .gatekeeper import Gatekeeper
    from .horizon import evidence_floor, prune_history
    from .migration import Migrator
    from .named import AnyPlan, load_plan, migrator_for
    from .names import DROP_COUNTER_COLUMNS, PARTITION_FLAGS_EXCLUSIVE, PLAN_NAMES, REPORT_FORMATS
    from .plans import (
        PLANS,
        Plan,
        PlanSpec,
        make_plan,
        plan_spec,
        service_key,
    )
    from .report import RENDERERS, render_json, render_markdown, render_text
    from .verdict import Decision, GateReport

# Each name loads its module on first use: `gate --help` needs no psycopg.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "flags_migration": ("ConstraintMigrator",),
        "flags_plan": ("ConstraintPlan", "make_constraint_plan"),
        "gatekeeper": ("Gatekeeper",),
        "horizon": ("evidence_floor", "prune_history"),
        "migration": ("Migrator",),
        "named": ("AnyPlan", "load_plan", "migrator_for"),
        "names": (
            "DROP_COUNTER_COLUMNS",
            "PARTITION_FLAGS_EXCLUSIVE",
            "PLAN_NAMES",
            "REPORT_FORMATS",
        ),
        "plans": ("PLANS", "Plan", "PlanSpec", "make_plan", "plan_spec", "service_key"),
        "report": ("RENDERERS", "render_json", "render_markdown", "render_text"),
        "verdict": ("Decision", "GateReport"),
    },
)

__all__ = [
    "DROP_COUNTER_COLUMNS",
    "PARTITION_FLAGS_EXCLUSIVE",
    "PLANS",
    "PLAN_NAMES",
    "RENDERERS",
    "REPORT_FORMATS",
    "AnyPlan",
    "ConstraintMigrator",
    "ConstraintPlan",
    "Decision",
    "GateReport",
    "Gatekeeper",
    "Migrator",
    "Plan",
    "PlanSpec",
    "evidence_floor",
    "load_plan",
    "make_constraint_plan",
    "make_plan",
    "migrator_for",
    "plan_spec",
    "prune_history",
    "render_json",
    "render_markdown",
    "render_text",
    "service_key",
]
