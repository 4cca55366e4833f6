"""Plans by name: the plan `migrate PLAN` shows or runs, and the migrator that runs it."""

from __future__ import annotations

from alerts import Clock
from config import ConfigError, Settings
from monitor.db import ConnectionSource
from monitor.gate.flags_migration import ConstraintMigrator
from monitor.gate.flags_plan import ConstraintPlan, make_constraint_plan
from monitor.gate.guarded import Progress
from monitor.gate.migration import Migrator
from monitor.gate.names import DROP_COUNTER_COLUMNS
from monitor.gate.plans import Plan, make_plan, plan_spec
from monitor.store import StateStore

AnyPlan = Plan | ConstraintPlan


def load_plan(settings: Settings, name: str, sql_file: str | None = None) -> AnyPlan:
    """The named plan. Raises ConfigError for an unknown name, or a --sql file that is
    refused (only drop_counter_columns takes one)."""
    spec = plan_spec(name)
    if spec.name == DROP_COUNTER_COLUMNS:
        return make_plan(settings, sql_file)
    if sql_file is not None:
        raise ConfigError(f"--sql is for {DROP_COUNTER_COLUMNS} only; {name} runs its own SQL "
                          "(see the dry run)")  # fmt: skip
    return make_constraint_plan(settings)


def migrator_for(
    settings: Settings, store: StateStore, source: ConnectionSource, clock: Clock,
    plan: AnyPlan, *, progress: Progress,
) -> Migrator | ConstraintMigrator:  # fmt: skip
    if isinstance(plan, ConstraintPlan):
        return ConstraintMigrator(settings, store, source, clock, plan, progress=progress)
    return Migrator(settings, store, source, clock, plan, progress=progress)
