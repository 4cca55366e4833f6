"""`dq-monitor config check|show|reference`: validate, inspect and document the settings."""

from __future__ import annotations

import argparse

from monitor.cli.options import lazy_handler


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    group = commands.add_parser(
        "config", parents=[common], help="validate, show or document the configuration"
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", parents=[common],
        help="validate the configuration offline and list every problem (no connection)",
        description="Validate the settings offline: it does not connect to any database or "
        "alert route (`dq-monitor doctor` does). Exit 0 when the configuration is valid; 2 "
        "with one `field: message` line per problem otherwise.",
    )  # fmt: skip
    check.set_defaults(handler=lazy_handler("monitor.cli.config_text", "cmd_config_check"))
    show = actions.add_parser(
        "show", parents=[common], help="print the effective configuration, secrets masked"
    )
    show.add_argument("--format", choices=("toml", "json"), default="toml")
    show.set_defaults(handler=lazy_handler("monitor.cli.config_text", "cmd_config_show"))
    reference = actions.add_parser(
        "reference", help="print the Markdown reference table of every setting"
    )
    reference.set_defaults(handler=lazy_handler("monitor.cli.config_text", "cmd_config_reference"))
