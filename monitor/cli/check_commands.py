"""`dq-monitor check` (one cycle, printed) and `dq-monitor run` (the scheduled service)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from config import DEFAULT_METRICS_PORT
from monitor.cli.logs import configure_from
from monitor.cli.options import EXAMPLE_DATABASE_URL, documented, port

if TYPE_CHECKING:  # the handlers import these when they run: `--help` needs none of them
    from checks import Check
    from monitor.app import App

log = logging.getLogger("dq-monitor")


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    check = commands.add_parser(
        "check",
        parents=[common],
        help="run the checks once, record them and print the results",
        **documented(
            "Run the enabled checks once, record them and print the results. Exit 0: all ok; "
            "1: violations found (or a check failed); 2: usage or configuration error; 3: a "
            "database cannot be reached.",
            f"DQ_DATABASE_URL={EXAMPLE_DATABASE_URL} dq-monitor check --check dashboard_mismatch",
        ),
    )
    check.add_argument(
        "--check", dest="checks", action="append", default=[], metavar="NAME",
        help="run only this check (repeatable; runs it even if disabled)",
    )  # fmt: skip
    check.add_argument("--full", action="store_true", help="sweep all runs, not just changed ones")
    check.add_argument(
        "--database", metavar="NAME", help="check only this database (default: every one)"
    )
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.add_argument(
        "--no-alerts", action="store_true",
        help="record results without advancing alerts or delivering messages",
    )  # fmt: skip
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run the scheduled service that Prometheus scrapes",
        **documented(
            "Run the checks on their schedules and serve /metrics, /healthz, /readyz and a "
            "status page. Several replicas may run; one leads and runs the checks.",
            f"DQ_DATABASE_URL={EXAMPLE_DATABASE_URL} dq-monitor run --metrics-port "
            f"{DEFAULT_METRICS_PORT}",
        ),
    )
    run.add_argument(
        "--metrics-port", type=port, metavar="N",
        help=f"port of the HTTP endpoints (default: $DQ_METRICS_PORT or {DEFAULT_METRICS_PORT})",
    )  # fmt: skip
    run.set_defaults(handler=cmd_run)


def cmd_check(args: argparse.Namespace) -> int:
    from checks import CheckResult, Status
    from config import exit_code_of_kinds, load_settings
    from monitor.cli.output import render_json, render_table
    from monitor.cli.progress import ProgressLine
    from monitor.fleet import Fleet

    settings = load_settings(args.config)
    configure_from(settings)
    # The results carry each check's error; the pipeline's own warning line would repeat it.
    logging.getLogger("monitor.pipeline").setLevel(logging.ERROR)
    # Console alerts go to stderr under --format json, so stdout stays one JSON document.
    console = sys.stderr if args.format == "json" else sys.stdout
    several = len(settings.monitored()) > 1
    lines: list[ProgressLine] = []

    def progress(name: str) -> ProgressLine:
        lines.append(ProgressLine(sys.stderr, args.clock, name if several else None))
        return lines[-1]

    fleet = Fleet.open(
        settings, clock=args.clock, only=args.database, alerts=not args.no_alerts,
        console=console, progress=progress,
    )  # fmt: skip
    results: list[CheckResult] = []
    names: list[str] = []
    hints: list[str] = []
    try:
        for app, line in zip(fleet, lines, strict=True):
            try:
                cycle = app.pipeline.run(args.checks, full=args.full)
            finally:
                line.close()
            for text in cycle.delivery.lines if cycle.delivery else ():
                print(f"dq-monitor: alert {_named(app, several)}{text}", file=sys.stderr)
            results.extend(cycle.results)
            names.extend(app.database for _ in cycle.results)
            # Index advice needs the monitored database; when it was unreachable, asking it
            # again would only wait for connect_timeout.
            if cycle.reached_database:
                hints.extend(f"{_named(app, several)}{h}" for h in _hints(app, cycle.checks))
    finally:
        fleet.close()
    if args.format == "json":
        print(render_json(results, hints, names))
    else:
        print(render_table(results, names if several else ()))
        for hint in hints:
            print(f"dq-monitor: hint: {hint}", file=sys.stderr)
    # Checks that share one snapshot share its error: one problem, one line.
    errors = (f"{_prefix(d, several)}{r.error}" for d, r in zip(names, results, strict=True)
              if r.status is Status.ERROR)  # fmt: skip
    for error in dict.fromkeys(errors):
        print(f"dq-monitor: error: {error}", file=sys.stderr)
    # The worst over every database, by the same rule as one database's cycle.
    return exit_code_of_kinds(
        [r.error_kind for r in results if r.status is Status.ERROR],
        problems=any(r.status is not Status.OK for r in results),
    )


def _named(app: App, several: bool) -> str:
    return _prefix(app.database, several)


def _prefix(database: str, several: bool) -> str:
    return f"database {database}: " if several else ""


def _hints(app: App, checks: Sequence[Check]) -> list[str]:
    from checks.indexes import missing_index_hints

    try:
        with app.pipeline.source.connection() as conn:
            return missing_index_hints(conn, checks, app.settings.tables)
    except Exception as exc:  # advice is best effort; the results already say what failed
        log.debug("index advice skipped: %s", exc)
        return []


def cmd_run(args: argparse.Namespace) -> int:
    from config import load_settings

    settings = load_settings(args.config)
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    configure_from(settings, timestamps=True)
    from monitor.service import (  # the scheduler and HTTP only load for `run`
        Service,
        exit_now,
    )

    # Bounded stop: exit_now does not wait for threads a silent database still holds.
    exit_now(Service(settings, args.clock, hard_exit=True).run())
    return 0  # not reached
