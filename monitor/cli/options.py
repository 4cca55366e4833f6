"""Argument types and handler references the commands share."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config import Settings

Handler = Callable[[argparse.Namespace], int]


def lazy_handler(module: str, name: str) -> Handler:
    """The handler `module.name`, imported only when its command runs: building the parser
    (and so `--help`) never loads the libraries a handler needs."""

    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(importlib.import_module(module), name)
        return handler(args)

    return run


def port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def add_database_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--database NAME`: which monitored database `what` acts on."""
    parser.add_argument(
        "--database", metavar="NAME",
        help=f"the monitored database {what} (required when several are configured)",
    )  # fmt: skip


def one_database(settings: Settings, name: str | None) -> str:
    """The database a one-database command acts on: `name` (its --database), or the only one
    configured. Raises ConfigError for an unknown name, for none configured, and for several
    without a name."""
    from config import NO_DATABASE, ConfigError, unknown_database

    names = [d.name for d in settings.monitored()]
    if name is not None:
        if name not in names:
            raise unknown_database(name, names)
        return name
    if not names:
        raise ConfigError(NO_DATABASE)
    if len(names) > 1:
        raise ConfigError(
            f"several databases are configured ({', '.join(names)}); choose one with "
            "--database NAME"
        )
    return names[0]
