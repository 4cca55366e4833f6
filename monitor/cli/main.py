"""The dq-monitor command line: parse, dispatch, and turn errors into one line and an exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from alerts import Clock, SystemClock

# Importing checks registers the built-in checks, which loading the settings needs.
from checks import CheckResult, Status, select_checks
from checks.indexes import missing_index_hints
from config import (
    DEFAULT_METRICS_PORT,
    ConfigError,
    DatabaseUnavailable,
    DqError,
    StoreUnavailable,
    load_settings,
    parse_duration,
)
from monitor import __version__
from monitor.app import App
from monitor.cli import alert_commands, config_commands, doctor_commands, gate_commands
from monitor.cli.output import render_json, render_table

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 1, 2, 3

log = logging.getLogger("dq-monitor")


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
        description="Data-quality monitor for job systems on PostgreSQL.",
        parents=[_global_options(top_level=True)],
    )
    parser.add_argument("--version", action="version", version=f"dq-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        parents=[common],
        help="run the checks once, record them and print the results",
        description="Run the enabled checks once, record them and print the results. "
        "Exit 0: all ok; 1: violations found (or a check failed); 2: usage or configuration "
        "error; 3: a database cannot be reached.",
    )
    check.add_argument(
        "--check", dest="checks", action="append", default=[], metavar="NAME",
        help="run only this check (repeatable; runs it even if disabled)",
    )  # fmt: skip
    check.add_argument("--full", action="store_true", help="sweep all runs, not just changed ones")
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
        description="Run the checks on their schedules and serve /metrics, /healthz, /readyz "
        "and a status page. Several replicas may run; one leads and runs the checks.",
    )
    run.add_argument(
        "--metrics-port", type=_port, metavar="N",
        help=f"port of the HTTP endpoints (default: $DQ_METRICS_PORT or {DEFAULT_METRICS_PORT})",
    )  # fmt: skip
    run.set_defaults(handler=cmd_run)
    alert_commands.add_parsers(commands, common)
    gate_commands.add_parsers(commands, common)
    config_commands.add_parsers(commands, common)
    doctor_commands.add_parsers(commands, common)
    demo = commands.add_parser(
        "demo", parents=[common], help="see dq-monitor catch the seed's race on this machine",
        description="Start an embedded PostgreSQL, simulate a job system with the seed's race, "
        "and run the real service against it. Ctrl-C stops it. Needs the `demo` extra.",
    )  # fmt: skip
    demo.add_argument("--duration", metavar="DURATION", help="stop after this long, e.g. 40s")
    demo.add_argument(
        "--metrics-port", type=_port, metavar="N",
        help=f"port of the metrics endpoint (default: $DQ_METRICS_PORT or {DEFAULT_METRICS_PORT}, "
        "or a free port if that one is taken)",
    )  # fmt: skip
    demo.add_argument(
        "--keep", action="store_true",
        help="leave the database running for inspection; print its URL and stop command",
    )  # fmt: skip
    demo.set_defaults(handler=cmd_demo)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo.demo import Demo  # loads the embedded server's support only for the demo

    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise ConfigError(f"--duration: {exc}") from None
    _configure_logging("WARNING")
    return Demo(args.config, duration, args.metrics_port, args.keep, args.clock).run()


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    _configure_logging(settings.log_level, timestamps=True)
    from monitor.service.service import (  # the scheduler and HTTP only load for `run`
        Service,
        exit_now,
    )

    # Bounded stop: exit_now does not wait for threads a silent database still holds.
    exit_now(Service(settings, args.clock, hard_exit=True).run())
    return 0  # not reached


def cmd_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    _configure_logging(settings.log_level)
    # The results carry each check's error; the runner's own warning line would repeat it.
    logging.getLogger("monitor.pipeline").setLevel(logging.ERROR)
    # Console alerts go to stderr under --format json, so stdout stays one JSON document.
    console = sys.stderr if args.format == "json" else sys.stdout
    app = App.open(settings, clock=args.clock, alerts=not args.no_alerts, console=console)
    try:
        results = app.runner.run(args.checks, full=args.full)
        # Index advice needs the monitored database; when it was unreachable, asking it again
        # would only wait for connect_timeout.
        reachable = exit_code(results) != EXIT_UNAVAILABLE
        hints = _hints(app, args.checks) if reachable else []
        if not args.no_alerts:
            report = app.outbox.deliver_due()
            for line in report.lines:
                print(f"dq-monitor: alert {line}", file=sys.stderr)
            if all(r.status is not Status.ERROR for r in results):
                app.heartbeat.ping()
    finally:
        app.close()
    if args.format == "json":
        print(render_json(results, hints))
    else:
        print(render_table(results))
        for hint in hints:
            print(f"dq-monitor: hint: {hint}", file=sys.stderr)
    # Checks that share one snapshot share its error: one problem, one line.
    for error in dict.fromkeys(r.error for r in results if r.status is Status.ERROR):
        print(f"dq-monitor: error: {error}", file=sys.stderr)
    return exit_code(results)


def _hints(app: App, names: Sequence[str]) -> list[str]:
    try:
        with app.runner.source.connection() as conn:
            return missing_index_hints(
                conn, select_checks(app.settings, names), app.settings.tables
            )
    except Exception as exc:  # advice is best effort; the results already say what failed
        log.debug("index advice skipped: %s", exc)
        return []


def exit_code(results: Sequence[CheckResult]) -> int:
    kinds = {r.extra.get("error_kind") for r in results if r.status is Status.ERROR}
    if "unavailable" in kinds:
        return EXIT_UNAVAILABLE
    if "config" in kinds:
        return EXIT_CONFIG
    if any(r.status is not Status.OK for r in results):
        return EXIT_VIOLATIONS
    return EXIT_OK


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time, so redirection and tests see the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _configure_logging(level: str, *, timestamps: bool = False) -> None:
    handler = _StderrHandler()
    fmt = "dq-monitor: %(levelname)s: %(message)s"
    if timestamps:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # APScheduler logs two INFO lines per job run; dq-monitor logs each result itself.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def error_exit_code(exc: DqError) -> int:
    """The one mapping from the exception tree to the documented exit codes."""
    if isinstance(exc, ConfigError):  # settings, missing tables, columns or grants
        return EXIT_CONFIG
    if isinstance(exc, DatabaseUnavailable | StoreUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_VIOLATIONS


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Entry point of the `dq-monitor` command; returns the exit code.

    The application's one clock is made here (tests pass their own) and handed down.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.clock = clock or SystemClock()
    try:
        code: int = args.handler(args)
    except DqError as exc:
        _print_error(exc)
        return error_exit_code(exc)
    except KeyboardInterrupt:
        print("dq-monitor: interrupted", file=sys.stderr)
        return 130
    return code


def _print_error(exc: DqError) -> None:
    seen: set[str] = set()
    for line in str(exc).splitlines() or [type(exc).__name__]:
        if line not in seen:  # one problem, one line
            seen.add(line)
            print(f"dq-monitor: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
