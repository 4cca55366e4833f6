"""`dq-monitor doctor`: the first command after a deploy; one line per item, what to do next."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from monitor.cli.options import EXAMPLE_DATABASE_URL, documented

if TYPE_CHECKING:  # the handler imports the doctor when it runs: `--help` needs none of it
    from monitor.doctor import DoctorItem

_DESCRIPTION = """\
Check, without writing anything, what this deployment needs: each database's server version,
the configured tables and columns, the grants of README "Database grants" (SELECT on the
three tables, USAGE on their schema, pg_read_all_stats), the indexes the checks use,
pg_stat_statements for the gate, the state schema (usable, or creatable) and its version.
With --routes, also whether each alert route's host answers HTTP.

Exit 0: every item ok; 2: at least one problem (each with a hint), or a configuration error.
"""


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check connections, grants, indexes and the state store",
        **documented(
            _DESCRIPTION, f"DQ_DATABASE_URL={EXAMPLE_DATABASE_URL} dq-monitor doctor --routes"
        ),
    )
    doctor.add_argument(
        "--routes", action="store_true",
        help="also check that each alert route's host answers (an HTTP HEAD to its origin)",
    )  # fmt: skip
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the diagnosis; raises ConfigError when the settings are invalid or incomplete."""
    from config import EXIT_CONFIG, EXIT_OK, load_settings
    from monitor.doctor import diagnose, healthy

    items = diagnose(load_settings(args.config), routes=args.routes)
    print(render_json(items) if args.format == "json" else render_text(items, args.routes))
    return EXIT_OK if healthy(items) else EXIT_CONFIG


def render_text(items: Sequence[DoctorItem], routes_checked: bool) -> str:
    """One line per item: status, name, detail and, when there is something to do, a hint."""
    from config import count
    from monitor.doctor import ItemStatus

    width = max(len(item.name) for item in items)
    lines = []
    for item in items:
        line = f"{item.status.value:<8} {item.name:<{width}}  {item.detail}"
        lines.append(line + (f"  hint: {item.hint}" if item.hint else ""))
    problems = sum(item.status is ItemStatus.PROBLEM for item in items)
    summary = count(problems, "problem") if problems else "all ok"
    if not routes_checked:
        summary += " (alert routes not checked: add --routes)"
    return "\n".join([*lines, f"doctor: {summary}"])


def render_json(items: Sequence[DoctorItem]) -> str:
    """One object: `ok` and the `items`, each with name, status, detail and hint."""
    from monitor.doctor import healthy

    return json.dumps({"ok": healthy(items), "items": [asdict(item) for item in items]}, indent=2)
