"""`dq-monitor state prune`: delete the state store's history past retention.history, once."""

from __future__ import annotations

import argparse
import sys

from monitor.cli.options import EXAMPLE_DATABASE_URL, documented


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:  # fmt: skip
    state = commands.add_parser(
        "state", parents=[common], help="dq-monitor's own state store",
        **documented("Maintain dq-monitor's own state store (the state_schema of each database, "
                     "or of DQ_STATE_DATABASE_URL).",
                     f"DQ_DATABASE_URL={EXAMPLE_DATABASE_URL} dq-monitor state prune"),
    )  # fmt: skip
    actions = state.add_subparsers(dest="action", required=True, metavar="ACTION")
    prune = actions.add_parser(
        "prune", parents=[common],
        help="delete history older than retention.history now (the service's leader does so "
        "every retention.interval), in batches of retention.batch_size rows",
        **documented(
            "Delete the state store's history older than retention.history now (the service's "
            "leader does so every retention.interval), in batches of retention.batch_size rows.",
            "DQ_CONFIG=/etc/dq-monitor/dq-monitor.toml dq-monitor state prune",
        ),
    )  # fmt: skip
    prune.set_defaults(handler=cmd_state_prune)


def cmd_state_prune(args: argparse.Namespace) -> int:
    # Imported here: `state --help` needs no psycopg or pydantic.
    from config import count, load_settings
    from monitor.fleet import Fleet
    from monitor.gate import prune_history

    fleet = Fleet.open(load_settings(args.config), clock=args.clock)
    try:
        tty = sys.stderr.isatty()
        for app in fleet:  # every database's state schema
            named = f"database {app.database}: " if fleet.several else ""

            def progress(table: str, deleted: int, named: str = named) -> None:
                if tty:
                    print(f"\r{named}pruning {table}: {count(deleted, 'row')} deleted", end="",
                          file=sys.stderr)  # fmt: skip

            result = prune_history(app.settings, app.store, app.clock.now(), progress)
            if tty and result.batches:
                print(file=sys.stderr)
            print(f"{named}{result.summary()}")
    finally:
        fleet.close()
    return 0
