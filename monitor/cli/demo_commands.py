"""`dq-monitor demo`: the simulated job system on an embedded PostgreSQL."""

from __future__ import annotations

import argparse
import logging

from config import DEFAULT_METRICS_PORT
from monitor.cli.options import documented, port

# The demo makes its own database; the rest of the settings are read as every command reads them.
_DEMO_SETTINGS = """\
settings: the demo makes its own database, so DQ_DATABASE_URL is not needed
  (nor used); other settings (checks, alert routes, metrics_port) come from the
  TOML file given by --config FILE or DQ_CONFIG, and from DQ_* environment
  variables, which override the file."""


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    demo = commands.add_parser(
        "demo", parents=[common],
        help="see dq-monitor catch a counter race on this machine",
        **documented(
            "Start an embedded PostgreSQL, simulate a job system whose failure counters race "
            "(its dashboard shows 3 failed workers in one place and 2 in another), and run the "
            "real service against it. Ctrl-C stops it. Needs the `demo` extra. With "
            "--gate-period, the demo also tells the release manager's story: the old build "
            "retires part-way, the gate goes from blocked to not yet to open, and the demo "
            "applies and rolls back drop_counter_columns, then ends (exit 0).",
            "dq-monitor demo --metrics-port 8477 --duration 5m",
            settings=_DEMO_SETTINGS,
        ),
    )
    demo.add_argument("--duration", metavar="DURATION", help="stop after this long, e.g. 40s")
    demo.add_argument(
        "--metrics-port", type=port, metavar="N",
        help=f"port of the metrics endpoint (default: $DQ_METRICS_PORT or {DEFAULT_METRICS_PORT}, "
        "or a free port if that one is taken)",
    )  # fmt: skip
    demo.add_argument(
        "--gate-period", metavar="DURATION",
        help="the gate's required clean period for this demo, e.g. 2m (shorter than the default "
        "7d, so accepted with gate.accept_weaker_settings); the old build retires after a "
        "quarter of it (at least 20s); the gate opens about 1.75 times the period after the "
        "start and the demo ends after the migration's rollback",
    )  # fmt: skip
    demo.add_argument(
        "--keep", action="store_true",
        help="leave the database running for inspection; print its URL and stop command",
    )  # fmt: skip
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from config import ConfigError, parse_duration
    from monitor.demo import Demo  # loads the embedded server's support only for the demo

    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise ConfigError(f"--duration: {exc}") from None
    gate_period = None
    if args.gate_period is not None:
        try:
            gate_period = parse_duration(args.gate_period)
        except ValueError as exc:
            raise ConfigError(f"--gate-period: {exc}") from None
        if not gate_period:
            raise ConfigError("--gate-period: must be longer than 0s, e.g. 2m")
    # main() configured the format (log_format) and the redaction; the demo's own output is
    # its narration, so only warnings and errors come through as log lines.
    logging.getLogger().setLevel(logging.WARNING)
    return Demo(
        args.config, duration, args.metrics_port, args.keep, args.clock, gate_period=gate_period
    ).run()
