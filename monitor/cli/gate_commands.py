"""`dq-monitor gate` and `dq-monitor migrate`: the release manager's commands."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

# Names only (monitor.gate.names): the parsers, and so `--help`, load none of the gate.
from monitor.cli.options import add_database_option, documented, one_database
from monitor.gate import DROP_COUNTER_COLUMNS, PLAN_NAMES, REPORT_FORMATS

if TYPE_CHECKING:
    from monitor.gate import Decision, GateReport


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    plans = ", ".join(PLAN_NAMES)
    gate = commands.add_parser(
        "gate", parents=[common], help="may a migration plan run yet?",
        **documented(
            "Evaluate a migration plan's gate (every plan's without PLAN). Exit 0: open; 1: "
            "blocked (findings, errors, gaps, or evidence that time alone will not supply); 4: "
            "not yet, only time is missing (without PLAN: the worst of the plans); 2: "
            f"configuration error; 3: a database cannot be reached. Plans: {plans}.",
            f"DQ_CONFIG=/etc/dq-monitor/dq-monitor.toml dq-monitor gate {DROP_COUNTER_COLUMNS} "
            "--format markdown",
        ),
    )
    gate.add_argument("plan", nargs="?", metavar="PLAN", help=f"one of: {plans}")
    gate.add_argument("--format", choices=REPORT_FORMATS, default="text")
    add_database_option(gate, "whose gate to evaluate")
    gate.set_defaults(handler=cmd_gate)

    migrate = commands.add_parser(
        "migrate", parents=[common], help="run a migration plan, guarded (default: migration 005)",
        **documented(
            "Without flags, a dry run: print the plan and the exact SQL. --apply runs it once "
            "the plan's gate is open; --rollback undoes it (for drop_counter_columns: re-adds "
            f"the columns and restores the archived values). Plans: {plans}; without PLAN, "
            f"{DROP_COUNTER_COLUMNS}.",
            f"DQ_CONFIG=/etc/dq-monitor/dq-monitor.toml dq-monitor migrate {DROP_COUNTER_COLUMNS} "
            "--apply --operator alice",
        ),
    )
    migrate.add_argument("plan", nargs="?", metavar="PLAN", default=DROP_COUNTER_COLUMNS,
                         help=f"one of: {plans} (default: {DROP_COUNTER_COLUMNS})")  # fmt: skip
    action = migrate.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="apply the migration")
    action.add_argument("--rollback", action="store_true", help="undo the last applied migration")
    add_database_option(migrate, "to migrate")
    migrate.add_argument("--operator", metavar="NAME", help="who applies it (kept in the audit)")
    migrate.add_argument("--sql", metavar="FILE", help="migration SQL (default: the shipped 005; "
                         f"{DROP_COUNTER_COLUMNS} only)")  # fmt: skip
    migrate.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from config import ConfigError, load_settings
    from monitor.app import App
    from monitor.gate import load_plan, migrator_for

    loaded = load_settings(args.config)
    database = one_database(loaded, args.database)
    settings = loaded.for_database(database)
    several = len(loaded.monitored()) > 1
    plan = load_plan(settings, args.plan, args.sql)
    if not (args.apply or args.rollback):
        if several:
            print(f"database: {database}")
        print(plan.describe(settings))
        return 0
    if not args.operator or not args.operator.strip():
        raise ConfigError("--operator NAME is required with --apply and --rollback (audit)")
    if several:
        print(f"database: {database}", flush=True)
    app = App.open(loaded, database, clock=args.clock, alerts=False)
    try:
        migrator = migrator_for(
            app.settings, app.store, app.primary, app.clock, plan,
            progress=lambda line: print(line, flush=True),
        )  # fmt: skip
        if args.apply:
            migrator.apply(args.operator.strip())
        else:
            migrator.rollback(args.operator.strip())
    finally:
        app.close()
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from config import load_settings
    from monitor.app import App
    from monitor.gate import PLANS, Gatekeeper, plan_spec

    names = [plan_spec(args.plan).name] if args.plan else list(PLANS)
    settings = load_settings(args.config)
    database = one_database(settings, args.database)
    app = App.open(settings, database, clock=args.clock, alerts=False)
    try:
        reports = [
            Gatekeeper(app.settings, app.store, app.primary, app.clock, plan=name)
            .evaluate()
            for name in names
        ]
    finally:
        app.close()
    print(named(render_all(reports, args.format), database, args.format)
          if len(settings.monitored()) > 1 else render_all(reports, args.format))  # fmt: skip
    return worst(reports).exit_code


def named(report: str, database: str, fmt: str) -> str:
    """The report with the database it is about: a `database` key in JSON, a first line in
    text and Markdown (only when several databases are configured: one keeps its report)."""
    if fmt == "json":
        return json.dumps({"database": database, **json.loads(report)}, indent=2)
    return f"database: {database}\n{report}"


def worst(reports: list[GateReport]) -> Decision:
    """BLOCKED over NOT_YET over OPEN."""
    from monitor.gate import Decision

    # Without a plan, `gate` exits with the worst decision of all plans.
    worst_first = (Decision.BLOCKED, Decision.NOT_YET, Decision.OPEN)
    return min((r.decision for r in reports), key=worst_first.index)


def render_all(reports: list[GateReport], fmt: str) -> str:
    """One plan's report as it always was; several one after the other (text, Markdown) or,
    in JSON, migration 005's report at the top level (so scripts that read it keep working)
    with `overall` (the worst decision, the exit code) and every plan's under `plans`."""
    from monitor.gate import RENDERERS

    if len(reports) == 1:
        return RENDERERS[fmt](reports[0])
    if fmt == "json":
        first = json.loads(RENDERERS["json"](reports[0]))
        decision = worst(reports)
        first["overall"] = {"decision": decision.value, "exit_code": decision.exit_code}
        first["plans"] = {r.plan: json.loads(RENDERERS["json"](r)) for r in reports}
        return json.dumps(first, indent=2)
    return "\n\n".join(RENDERERS[fmt](r).rstrip("\n") for r in reports)
