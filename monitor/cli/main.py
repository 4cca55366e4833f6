"""The dq-monitor command line: parse, dispatch, and turn errors into one line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.cli import (
    alert_commands,
    check_commands,
    config_commands,
    demo_commands,
    doctor_commands,
    gate_commands,
    state_commands,
)
from monitor.cli.options import EXAMPLE_DATABASE_URL, documented

if TYPE_CHECKING:
    from alerts import Clock
    from config import DqError


def _global_options(*, top_level: bool) -> argparse.ArgumentParser:
    """The options every command takes, defined once; accepted before or after the command.

    Only the top level has a default: a subcommand's copy is SUPPRESSed when absent, so it
    never overwrites a value given before the subcommand (argparse copies every attribute a
    subparser sets into the namespace).
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config", metavar="FILE", default=None if top_level else argparse.SUPPRESS,
        help="TOML configuration file (default: $DQ_CONFIG); settings also come from DQ_* "
        "environment variables, which override the file",
    )  # fmt: skip
    return options


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="dq-monitor",
        parents=[_global_options(top_level=True)],
        **documented(
            "Data-quality monitor for job systems on PostgreSQL. `dq-monitor COMMAND --help` "
            "tells what a command does and shows an example.",
            f"DQ_DATABASE_URL={EXAMPLE_DATABASE_URL} dq-monitor check",
        ),
    )
    parser.add_argument("--version", action="version", version=f"dq-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check_commands.add_parsers(commands, common)
    alert_commands.add_parsers(commands, common)
    gate_commands.add_parsers(commands, common)
    config_commands.add_parsers(commands, common)
    doctor_commands.add_parsers(commands, common)
    demo_commands.add_parsers(commands, common)
    state_commands.add_parsers(commands, common)
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Entry point of the `dq-monitor` command; returns the exit code.

    The application's one clock is made here (tests pass their own) and handed down.
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and --version end here, before anything heavy loads
    # Loaded only now, for a command that runs: the parser above needs none of them.
    import checks  # noqa: F401 - registers the built-in checks, which loading the settings needs
    from alerts import SystemClock
    from config import DqError

    args.clock = clock or SystemClock()
    try:
        _configure_logging(args.config)
        code: int = args.handler(args)
    except DqError as exc:
        _print_error(exc)
        return exc.exit_code  # the exception tree (config.errors) maps each error to its code
    except KeyboardInterrupt:
        print("dq-monitor: interrupted", file=sys.stderr)
        return 130
    return code


def _configure_logging(config: str | None) -> None:
    """Every command logs as log_level and log_format say (`run` adds timestamps, `demo`
    keeps to warnings). Settings that do not load leave the text default: the command itself
    reports why, as its error."""
    from config import DqError, load_settings
    from monitor.cli.logs import configure_from, configure_logging

    try:
        settings = load_settings(config)
    except DqError:
        configure_logging("INFO")
        return
    configure_from(settings)


def _print_error(exc: DqError) -> None:
    seen: set[str] = set()
    for line in str(exc).splitlines() or [type(exc).__name__]:
        if line not in seen:  # one problem, one line
            seen.add(line)
            print(f"dq-monitor: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
