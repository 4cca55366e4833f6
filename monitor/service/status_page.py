"""The status page `/`: each database's checks, gates and alert delivery, from memory only."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qs, quote

from alerts import Clock
from checks import Check
from config import DEFAULT_DATABASE, count, redact
from monitor.secrets import settings_secrets
from monitor.service.metrics import DatabaseView, DatabaseViews
from monitor.service.page_text import STYLE, ago, badge, breakable, one_line, when
from monitor.service.status_sections import delivery_section, gate_section
from monitor.service.trend import sparkline

REFRESH_SECONDS = 30
# last_status -> (badge style, the word shown)
_STATUS = {"ok": ("ok", "ok"), "violation": ("violation", "violations"),
           "error": ("error", "error")}  # fmt: skip
_NOT_RUN = ("none", "not run yet")


@dataclass(frozen=True)
class Focus:
    """The check an alert's link points at (`?check=NAME&database=NAME`, both optional)."""

    check: str | None = None
    database: str | None = None

    @classmethod
    def parse(cls, query_string: str) -> Focus:
        query = parse_qs(query_string)
        check, database = query.get("check") or [""], query.get("database") or [""]
        return cls(check[0] or None, database[0] or None)


def anchor(database: str, check: str) -> str:
    """The id of a check's row: an HTML id holds no spaces, so odd characters become _."""
    return "check-" + re.sub(r"[^\w-]", "_", f"{database}-{check}")


def samples_href(views: DatabaseViews, database: str, check: str) -> str:
    """The JSON of the check's latest result (see latest_result.py)."""
    href = f"/api/checks/{quote(check, safe='')}/latest"
    return href if len(views) == 1 else f"{href}?database={quote(database, safe='')}"


class StatusPage:
    """Renders `/` from the views' cached snapshots; never queries a database."""

    def __init__(
        self, views: DatabaseViews, clock: Clock, store_up: Callable[[], bool]
    ) -> None:
        self.views = views
        self.clock = clock
        self.store_up = store_up
        self.secrets = {name: settings_secrets(view.settings) for name, view in views.items()}

    @property
    def single(self) -> bool:
        """One database named `default`: no need to name it everywhere."""
        return list(self.views) == [DEFAULT_DATABASE]

    def render(self, focus: Focus = Focus()) -> str:
        now = self.clock.now()
        shown, notice = self._focus(focus)
        sections = [self._database(name, view, shown) for name, view in self.views.items()]
        links = " · ".join(f"<a href='{p}'>{p}</a>" for p in ("/metrics", "/healthz", "/readyz"))
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
            f"<title>dq-monitor status</title><style>{STYLE}</style></head><body><header>"
            "<h1>dq-monitor</h1>"
            f"<p class='muted'>Generated at {when(now)}; this page reloads every "
            f"{REFRESH_SECONDS} s. {links}</p>"
            f"<p>This replica: {self._role()}. State store: {self._store()}.</p>"
            f"{self._summary()}{notice}</header><main>{''.join(sections)}</main></body></html>"
        )

    def _role(self) -> str:
        leads = [name for name, view in self.views.items() if view.is_leader()]
        if not leads:
            return "follower (serves metrics)"
        if self.single:
            return "leader (runs the checks)"
        return f"leader of {escape(', '.join(leads))} (runs their checks)"

    def _store(self) -> str:
        if self.store_up():
            return "reachable"
        loaded = min(view.cache.snapshot.loaded_at for view in self.views.values())
        if not loaded:
            return "<strong>UNREACHABLE</strong> (nothing loaded yet)"
        at = dt.datetime.fromtimestamp(loaded, dt.UTC)
        return (
            f"<strong>UNREACHABLE</strong> (showing last known values, loaded {when(at)}, "
            f"{ago(at, self.clock.now())})"
        )

    def _summary(self) -> str:
        failing: dict[str, int] = {}
        total = 0
        for view in self.views.values():
            for check in view.checks:
                total += 1
                status = view.cache.snapshot.stats.check(check.name).last_status
                if status in ("violation", "error"):
                    failing[check.severity.value] = failing.get(check.severity.value, 0) + 1
        if not failing:
            return f"<p>{badge('ok', 'all clear')} No check of {count(total, 'check')} failing.</p>"
        parts = ", ".join(f"{n} {severity}" for severity, n in sorted(failing.items()))
        worst = "critical" if "critical" in failing else "warning"
        n = sum(failing.values())
        return (
            f"<p class='notice alarm'>{badge(worst, worst)} {count(n, 'check')} of {total} "
            f"failing ({escape(parts)}).</p>"
        )

    def _focus(self, focus: Focus) -> tuple[set[tuple[str, str]] | None, str]:
        """Which (database, check) rows to show (None: all), and a notice saying why."""
        if focus.check is None and focus.database is None:
            return None, ""
        if focus.database is not None and focus.database not in self.views:
            known = ", ".join(self.views)
            return None, (
                f"<p class='notice'>No database named {escape(repr(focus.database))} here (the "
                f"databases are {escape(known)}); showing everything.</p>"
            )
        if focus.check is None:
            return None, ""
        databases = [focus.database] if focus.database else list(self.views)
        shown = {
            (name, focus.check) for name in databases
            if any(c.name == focus.check for c in self.views[name].checks)
        }  # fmt: skip
        where = "" if self.single or not focus.database else f" in database {focus.database}"
        if not shown:
            return None, (
                f"<p class='notice'>No check named {escape(repr(focus.check))}{escape(where)}; "
                "showing all checks.</p>"
            )
        return shown, (
            f"<p class='notice'>Showing check {escape(focus.check)}{escape(where)} only, as the "
            "alert's link asked. <a href='/'>Show all checks</a></p>"
        )

    def _database(self, name: str, view: DatabaseView, shown: set[tuple[str, str]] | None) -> str:
        level = "h2" if self.single else "h3"
        checks = [c for c in view.checks if shown is None or (name, c.name) in shown]
        if checks:
            rows = "".join(self._row(name, view, check, shown is not None) for check in checks)
            table = (
                "<table class='checks'><thead><tr><th>check</th><th>severity</th><th>status</th>"
                "<th>violations</th><th>last success</th><th>last 24 h</th><th>samples</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>"
            )
        else:
            table = f"<p class='muted'>{count(len(view.checks), 'check')} hidden.</p>"
        parts = [
            f"<{level}>Checks</{level}>{self._reachable(view)}{table}",
            f"<{level}>Migration gate</{level}>{gate_section(view, self.clock.now())}",
            f"<{level}>Alert delivery</{level}>{delivery_section(view, not self.single)}",
        ]
        if self.single:
            return f"<section id='{escape(name)}'>{''.join(parts)}</section>"
        return (
            f"<section id='{escape(name)}'><h2>Database {escape(name)}</h2>"
            f"{''.join(parts)}</section>"
        )

    def _reachable(self, view: DatabaseView) -> str:
        """Whether the leader's latest check reached the monitored database (dq_database_up)."""
        published = view.cache.snapshot.stats.service.get("database") or {}
        at = published.get("at")
        if not isinstance(at, str):
            return ""
        when_seen = ago(dt.datetime.fromisoformat(at), self.clock.now())
        if published.get("up"):
            return f"<p>Monitored database: reachable at the latest check ({when_seen}).</p>"
        return (
            f"<p class='notice alarm'>Monitored database: <strong>UNREACHABLE</strong> at the "
            f"latest check ({when_seen}); the results below are from before.</p>"
        )

    def _row(self, database: str, view: DatabaseView, check: Check, focused: bool) -> str:
        snapshot = view.cache.snapshot.stats
        stats = snapshot.check(check.name)
        kind, word = _STATUS.get(stats.last_status or "", _NOT_RUN)
        status = badge(kind, word)
        latest = snapshot.latest.get(check.name)
        if stats.last_status == "error":
            reason = latest.error if latest and latest.status == "error" else None
            text = "no reason recorded"
            if reason:
                text = one_line(redact(reason, self.secrets[database]))
            status += f"<span class='reason'>{escape(text)}</span>"
        if stats.last_status in ("ok", "violation"):
            violations = count(stats.last_violations, "violation")
        elif stats.last_success_at is not None:
            violations = f"{count(stats.last_violations, 'violation')} at the last success"
        else:
            violations = "—"
        success = "never"
        if stats.last_success_at is not None:
            success = (
                f"<span class='nw'>{when(stats.last_success_at)}</span> "
                f"<span class='muted nw'>({ago(stats.last_success_at, self.clock.now())})</span>"
            )
        samples = "no run yet"
        if latest is not None:
            samples = count(len(latest.samples), "sample")
        href = escape(samples_href(self.views, database, check.name), quote=True)
        severity = check.severity.value
        cells = [
            ("check", f"<strong class='name'>{breakable(check.name)}</strong>"),
            ("severity", badge(severity, severity)),
            ("status", status),
            ("violations", f"<span class='nw'>{violations}</span>"),
            ("last success", success),
            ("last 24 h", sparkline(view.cache.snapshot.trends.get(check.name, ()))),
            ("samples", f"<a class='nw' href='{href}'>{samples} (JSON)</a>"),
        ]
        row_class = " class='hl'" if focused else ""
        tds = "".join(f"<td data-l='{label}'>{value}</td>" for label, value in cells)
        return f"<tr id='{anchor(database, check.name)}'{row_class}>{tds}</tr>"
