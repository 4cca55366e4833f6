"""The migration gate: named plans, their evidence, the verdict, its report, the guarded runs."""

from __future__ import annotations

from .flags_migration import ConstraintMigrator
from .flags_plan import ConstraintPlan, make_constraint_plan
from .gatekeeper import Gatekeeper
from .horizon import evidence_floor, prune_history
from .migration import Migrator
from .named import AnyPlan, load_plan, migrator_for
from .plans import (
    DROP_COUNTER_COLUMNS,
    PARTITION_FLAGS_EXCLUSIVE,
    PLANS,
    Plan,
    PlanSpec,
    make_plan,
    plan_spec,
    service_key,
)
from .report import RENDERERS, render_json, render_markdown, render_text
from .verdict import Decision, GateReport

__all__ = [
    "DROP_COUNTER_COLUMNS",
    "PARTITION_FLAGS_EXCLUSIVE",
    "PLANS",
    "RENDERERS",
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
