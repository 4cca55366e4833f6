"""`dq-monitor silence ...` and `dq-monitor alerts test`: operating the alerts by hand."""

from __future__ import annotations

import argparse
import os
import pwd
import sys

from monitor.cli import outbox_commands
from monitor.cli.options import EXAMPLE_DATABASE_URL, add_database_option, documented, one_database

# The handlers import what they use when they run: the parsers, and so `--help`, need none of it.

_URL = EXAMPLE_DATABASE_URL


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:  # fmt: skip
    silence = commands.add_parser(
        "silence", parents=[common],
        help="silence a check's alerts for a while (add, list, remove)",
        **documented("Silence a check's alerts for a while, list the silences, or end one.",
                     f"DQ_DATABASE_URL={_URL} dq-monitor silence list"),
    )  # fmt: skip
    actions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", parents=[common], help="silence a check",
        **documented(
            "Silence a check's alerts for DURATION; the reason is kept for the migration gate.",
            f"DQ_DATABASE_URL={_URL} dq-monitor silence add stale_partitions --for 2h "
            "--reason 'backfill of the March runs'",
        ),
    )  # fmt: skip
    add.add_argument("check", metavar="CHECK")
    add.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                     help="how long, e.g. 30m, 2h, 1d")  # fmt: skip
    add.add_argument("--reason", required=True, help="why (kept for the migration gate)")
    add.add_argument("--by", default=None, help="who silences (default: the OS user)")
    add_database_option(add, "whose check to silence")
    add.set_defaults(handler=cmd_silence_add)
    listing = actions.add_parser(
        "list", parents=[common], help="list active silences",
        **documented("List the active silences (with --all, also expired and removed ones).",
                     f"DQ_DATABASE_URL={_URL} dq-monitor silence list --all"),
    )  # fmt: skip
    listing.add_argument("--all", action="store_true", help="include expired and removed ones")
    add_database_option(listing, "whose silences to list")
    listing.set_defaults(handler=cmd_silence_list)
    remove = actions.add_parser(
        "remove", parents=[common], help="end a silence now",
        **documented("End the silence ID (as `silence list` shows it) now.",
                     f"DQ_DATABASE_URL={_URL} dq-monitor silence remove 12 --by alice"),
    )  # fmt: skip
    remove.add_argument("id", type=int, metavar="ID")
    remove.add_argument("--by", default=None, help="who removes it (default: the OS user)")
    add_database_option(remove, "whose silence to remove")
    remove.set_defaults(handler=cmd_silence_remove)

    alerts = commands.add_parser(
        "alerts", parents=[common],
        help="alert routes: test one, list undelivered messages, retry dead ones",
        **documented("Operate the alert routes (alerts.routes in the file, or DQ_ALERTS__ROUTES): "
                     "send a test message, list the messages not delivered, retry dead ones.",
                     "dq-monitor --config /etc/dq-monitor/dq-monitor.toml alerts test"),
    )  # fmt: skip
    alert_actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    test = alert_actions.add_parser(
        "test", parents=[common], help="send a test message and report the receiver's answer",
        **documented(
            "Send each route a test message and print the receiver's answer. The message pages "
            "no one: a webhook gets alertname DqMonitorTest, severity none and status resolved "
            "(endsAt = startsAt), so a bridge that opens incidents on firing alerts ignores it; "
            "Slack and the console say it is a test.",
            "DQ_CONFIG=/etc/dq-monitor/dq-monitor.toml dq-monitor alerts test --route slack",
        ),
    )
    test.add_argument("--route", metavar="NAME", help="only this route (default: every route)")
    test.set_defaults(handler=cmd_alerts_test)
    outbox_commands.add_parsers(alert_actions, common)


def operator(given: str | None) -> str:
    """Who acts: `given` (a --by option), or the OS user."""
    return given or pwd.getpwuid(os.getuid()).pw_name


def cmd_silence_add(args: argparse.Namespace) -> int:
    from config import ConfigError, load_settings, parse_duration
    from monitor.app import App
    from monitor.store import Silences

    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise ConfigError(f"--for: {exc}") from None
    settings = load_settings(args.config)
    app = App.open(settings, one_database(settings, args.database), clock=args.clock)
    try:
        silence = Silences(app.store, app.settings).add(
            args.check, duration, args.reason, operator(args.by), app.clock.now()
        )
        print(f"silenced: {silence.describe(app.clock.now())}")
    finally:
        app.close()
    return 0


def cmd_silence_list(args: argparse.Namespace) -> int:
    from config import load_settings
    from monitor.app import App
    from monitor.store import Silences

    settings = load_settings(args.config)
    app = App.open(settings, one_database(settings, args.database), clock=args.clock)
    try:
        now = app.clock.now()
        found = Silences(app.store, app.settings).active(now, include_ended=args.all)
        for silence in found:
            print(silence.describe(now))
        if not found:
            print("no active silences" if not args.all else "no silences")
    finally:
        app.close()
    return 0


def cmd_silence_remove(args: argparse.Namespace) -> int:
    from config import load_settings
    from monitor.app import App
    from monitor.store import Silences

    settings = load_settings(args.config)
    app = App.open(settings, one_database(settings, args.database), clock=args.clock)
    try:
        now = app.clock.now()
        silence = Silences(app.store, app.settings).remove(args.id, operator(args.by), now)
        print(f"removed: {silence.describe(now)}")
    finally:
        app.close()
    return 0


def cmd_alerts_test(args: argparse.Namespace) -> int:
    from alerts import Kind, Notification, deliver, fingerprint
    from config import ConfigError, Severity, load_settings
    from monitor.app import App

    settings = load_settings(args.config)
    routes = settings.alerts.routes
    if args.route is not None:
        route = settings.alerts.route(args.route)
        if route is None:
            names = ", ".join(r.name for r in routes) or "none configured"
            raise ConfigError(f"unknown route {args.route!r}; routes: {names}")
        routes = (route,)
    if not routes:
        raise ConfigError("no alert routes are configured; add [[alerts.routes]] to the config")
    # Any database's App will do: a test message goes to the route, not through a store.
    first = next((d.name for d in settings.monitored()), None)
    app = App.open(settings, first, clock=args.clock, alerts=False)
    failed = 0
    try:
        now = app.clock.now()
        for route in routes:
            message = Notification(
                kind=Kind.TEST, check="dq_monitor_test", route=route.name,
                fingerprint=fingerprint("dq_monitor_test", route.name),
                idempotency_key=f"test-{route.name}-{int(now.timestamp())}",
                severity=Severity.INFO,
                description="A test message from dq-monitor: this route is wired correctly.",
                violations=0, previous_violations=0, active_since=now, created_at=now,
                dashboard_url=settings.alerts.dashboard_url,
                external_url=settings.alerts.external_url,
            )  # fmt: skip
            outcome = deliver(
                route, message, lambda: app.outbox.client, clock=app.clock, console=sys.stderr
            )
            print(f"route {route.name} ({route.type.value}): {outcome.describe()}")
            failed += not outcome.delivered
    finally:
        app.close()
    return 1 if failed else 0
