"""`dq-monitor alerts outbox` and `alerts retry`: undelivered messages, and dead ones sent again."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from monitor.cli.options import EXAMPLE_DATABASE_URL, add_database_option, documented, one_database

if TYPE_CHECKING:
    from monitor.store import OutboxEntry, Retried

_URL = EXAMPLE_DATABASE_URL


def add_parsers(actions: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:  # fmt: skip
    outbox = actions.add_parser(
        "outbox", parents=[common], help="list the alert messages not delivered yet, and dead ones",
        **documented(
            "List the alert messages waiting in the outbox (pending: the service retries them) "
            "and those given up (dead: a permanent error from the receiver, or "
            "alerts.max_delivery_age passed), newest first, each with its last error.",
            f"DQ_DATABASE_URL={_URL} dq-monitor alerts outbox --dead",
        ),
    )  # fmt: skip
    which = outbox.add_mutually_exclusive_group()
    which.add_argument("--dead", action="store_true", help="only the dead messages")
    which.add_argument("--pending", action="store_true", help="only the pending messages")
    outbox.add_argument("--route", metavar="NAME", help="only this route's messages")
    outbox.add_argument("--limit", type=_positive, default=50, metavar="N",
                        help="show at most N messages (default 50)")  # fmt: skip
    outbox.add_argument("--format", choices=("table", "json"), default="table")
    add_database_option(outbox, "whose outbox to list")
    outbox.set_defaults(handler=cmd_alerts_outbox)

    retry = actions.add_parser(
        "retry", parents=[common], help="send dead alert messages again",
        **documented(
            "Queue dead messages again, due now: the service (or the next `dq-monitor check`) "
            "delivers them. A dead message is left alone when a later message of the same "
            "alert and route was delivered or is queued: sending the older one would tell the "
            "receiver a state that is over. Fix the route first (`alerts test --route NAME`).",
            f"DQ_DATABASE_URL={_URL} dq-monitor alerts retry --all-dead --route data-team",
        ),
    )  # fmt: skip
    # IDs or --all-dead, checked by the handler: argparse cannot make a positional "*" and a
    # flag exclusive.
    retry.add_argument("ids", nargs="*", type=int, metavar="ID",
                       help="the dead messages to retry, as `alerts outbox --dead` lists them")
    retry.add_argument("--all-dead", action="store_true", help="every dead message")
    retry.add_argument("--route", metavar="NAME", help="only this route's dead messages")
    retry.add_argument("--by", default=None, help="who retries (default: the OS user)")
    add_database_option(retry, "whose dead messages to retry")
    retry.set_defaults(handler=cmd_alerts_retry)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is not 1 or more")
    return n


def cmd_alerts_outbox(args: argparse.Namespace) -> int:
    from config import load_settings
    from monitor.app import App
    from monitor.store import UNDELIVERED

    settings = load_settings(args.config)
    database = one_database(settings, args.database)
    statuses = ("dead",) if args.dead else ("pending",) if args.pending else UNDELIVERED
    app = App.open(settings, database, clock=args.clock, alerts=False)
    try:
        shown, total = app.store.outbox.entries(statuses, args.route, args.limit)
    finally:
        app.close()
    if args.format == "json":
        doc = {"database": database, "total": total, "messages": [e.as_json() for e in shown]}
        print(json.dumps(doc, indent=2))
    else:
        print(render_outbox(shown, total, statuses))
    return 0


def render_outbox(shown: list[OutboxEntry], total: int, statuses: tuple[str, ...]) -> str:
    """The messages as a table, and a last line counting them."""
    from config import count

    what = " or ".join(statuses)
    if not shown:
        return f"no {what} messages"
    header = ("ID", "STATUS", "ROUTE", "CHECK", "KIND", "ATTEMPTS", "CREATED (UTC)", "LAST ERROR")
    rows = [
        (str(e.id), e.status, e.route, e.check, e.kind, str(e.attempts),
         e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.last_error or "-")
        for e in shown
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    numbers = (0, 5)  # ID and ATTEMPTS read right-aligned
    lines = ["  ".join([*(c.rjust(w) if i in numbers else c.ljust(w)
                          for i, (c, w) in enumerate(zip(r, widths, strict=False))), r[-1]])
             for r in (header, *rows)]  # fmt: skip
    by_status = [count(sum(e.status == s for e in shown), f"{s} message") for s in statuses]
    more = f"; showing the newest {len(shown)} (--limit)" if total > len(shown) else ""
    lines.append("")
    lines.append(f"{count(total, f'{what} message')}{more}" if len(statuses) == 1 or more
                 else ", ".join(by_status))  # fmt: skip
    return "\n".join(lines)


def cmd_alerts_retry(args: argparse.Namespace) -> int:
    from config import ConfigError, load_settings
    from monitor.app import App
    from monitor.cli.alert_commands import operator

    if args.all_dead == bool(args.ids):
        raise ConfigError("name the dead messages to retry (IDs) or give --all-dead")
    settings = load_settings(args.config)
    database = one_database(settings, args.database)
    app = App.open(settings, database, clock=args.clock, alerts=False)
    try:
        done = app.store.outbox.retry_dead(
            None if args.all_dead else args.ids, args.route, app.clock.now(), operator(args.by)
        )
    finally:
        app.close()
    print(render_retried(done))
    return 0


def render_retried(done: Retried) -> str:
    """What was queued again and what was left dead, one line each."""
    from config import count, noun

    lines = []
    if done.queued:
        ids = ", ".join(str(i) for i in done.queued)
        lines.append(f"queued again: {count(len(done.queued), 'message')} ({ids}); the service "
                     "(or the next `dq-monitor check`) delivers them")  # fmt: skip
    for dead, later in done.superseded:
        lines.append(f"left dead: {dead}: message {later} of the same alert and route came later")
    if not lines:
        return "no dead messages to retry"
    if done.superseded and not done.queued:
        left = len(done.superseded)
        lines.append(f"nothing queued: the {noun(left, 'message')} left dead would be out of date")
    return "\n".join(lines)
