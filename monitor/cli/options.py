"""Argument types and handler references the commands share."""

from __future__ import annotations

import argparse
import importlib
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config import Settings

Handler = Callable[[argparse.Namespace], int]

EXAMPLE_DATABASE_URL = "postgresql://dq_monitor@db.example.com/jobs"
# Where every command that loads the settings finds them (config/loading.py's order).
SETTINGS_FROM = """\
settings: the monitored database from DQ_DATABASE_URL (or `databases` in the
  file); the TOML file from --config FILE or DQ_CONFIG; other DQ_* environment
  variables override the file."""
NO_SETTINGS = """\
settings: none; this command reads no configuration (no DQ_DATABASE_URL,
  --config or DQ_CONFIG)."""
_WIDTH = 78  # an 80-column terminal, as argparse's own wrapping assumes


def documented(description: str, example: str, *, settings: str = SETTINGS_FROM) -> dict[str, Any]:
    """The add_parser() keywords that give a command its help: `description` wrapped (blank
    lines keep paragraphs apart), then where its settings come from and one `example` command
    line, kept as written (RawDescriptionHelpFormatter only re-wraps the option help)."""
    paragraphs = [textwrap.fill(" ".join(p.split()), _WIDTH) for p in description.split("\n\n")]
    return {
        "description": "\n\n".join(paragraphs),
        "epilog": f"{settings}\n\nexample:\n  {example}",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


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
