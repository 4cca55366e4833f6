"""`dq-monitor gate` and `dq-monitor migrate`: the release manager's commands."""

from __future__ import annotations

import argparse

from config import ConfigError, load_settings
from monitor.app import App
from monitor.gate import RENDERERS, Gatekeeper, Migrator, make_plan


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    gate = commands.add_parser(
        "gate", parents=[common], help="may the deprecated counters be dropped yet?",
        description="Evaluate the column-removal gate. Exit 0: open; 1: blocked by findings; "
        "4: clean so far but the period is not complete; 2: configuration error; 3: a "
        "database cannot be reached.",
    )  # fmt: skip
    gate.add_argument("--format", choices=tuple(RENDERERS), default="text")
    gate.set_defaults(handler=cmd_gate)

    migrate = commands.add_parser(
        "migrate", parents=[common], help="drop the deprecated counters (migration 005), guarded",
        description="Without flags, a dry run: print the plan and the exact SQL. --apply "
        "drops the columns once the gate is open; --rollback re-adds them and restores the "
        "archived values.",
    )  # fmt: skip
    action = migrate.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="apply the migration")
    action.add_argument("--rollback", action="store_true", help="undo the last applied migration")
    migrate.add_argument("--operator", metavar="NAME", help="who applies it (kept in the audit)")
    migrate.add_argument("--sql", metavar="FILE", help="migration SQL (default: the shipped 005)")
    migrate.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    plan = make_plan(settings, args.sql)
    if not (args.apply or args.rollback):
        print(plan.describe(settings))
        return 0
    if not args.operator or not args.operator.strip():
        raise ConfigError("--operator NAME is required with --apply and --rollback (audit)")
    app = App.open(settings, clock=args.clock, alerts=False)
    try:
        migrator = Migrator(
            app.settings, app.store, app.pipeline.source, app.clock, plan,
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
    app = App.open(load_settings(args.config), clock=args.clock, alerts=False)
    try:
        report = Gatekeeper(app.settings, app.store, app.pipeline.source, app.clock).evaluate()
    finally:
        app.close()
    print(RENDERERS[args.format](report))
    return report.decision.exit_code
