"""`dq-monitor config check|show|reference`: validate, inspect and document the settings."""

from __future__ import annotations

import argparse

from monitor.cli.options import NO_SETTINGS, documented, lazy_handler


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    group = commands.add_parser(
        "config", parents=[common], help="validate, show or document the configuration",
        **documented("Validate, show or document the configuration.",
                     "dq-monitor config check --config dq-monitor.toml"),
    )  # fmt: skip
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", parents=[common],
        help="validate the configuration offline and list every problem (no connection)",
        **documented(
            "Validate the settings offline: it does not connect to any database or alert route "
            "(`dq-monitor doctor` does). Exit 0 when the configuration is valid; 2 with one "
            "`field: message` line per problem otherwise.",
            "DQ_CONFIG=/etc/dq-monitor/dq-monitor.toml dq-monitor config check",
        ),
    )
    check.set_defaults(handler=lazy_handler("monitor.cli.config_text", "cmd_config_check"))
    show = actions.add_parser(
        "show", parents=[common], help="print the effective configuration, secrets masked",
        **documented(
            "Print the effective configuration (the file, the DQ_* variables and the defaults "
            "merged), secrets masked.",
            "dq-monitor config show --config dq-monitor.toml --format json",
        ),
    )
    show.add_argument("--format", choices=("toml", "json"), default="toml")
    show.set_defaults(handler=lazy_handler("monitor.cli.config_text", "cmd_config_show"))
    reference = actions.add_parser(
        "reference", help="print the Markdown reference table of every setting",
        **documented(
            "Print the Markdown reference table of every setting: its TOML key, DQ_* variable, "
            "default and meaning.",
            "dq-monitor config reference",
            settings=NO_SETTINGS,
        ),
    )
    reference.set_defaults(handler=lazy_handler("monitor.cli.config_text", "cmd_config_reference"))
