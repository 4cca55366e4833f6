"""Alert settings: routes (Slack, webhook, Alertmanager, console), lifecycle timing, delivery."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .checks import Severity
from .durations import Duration, PositiveDuration

_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


def url_problem(url: str) -> str | None:
    """Why `url` cannot be POSTed to, or None when it can: http or https, a parseable host
    and port, nothing the HTTP client refuses. The problem never quotes the URL (a secret)."""
    if not url.startswith(("https://", "http://")):
        return "url must start with https:// or http://"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "url must not contain spaces or control characters"
    problem = _host_problem(url)
    if problem is not None:
        return problem
    import httpx  # only settings with a URL pay for loading the HTTP client

    try:
        # .host decodes an IDNA host (xn--...), as httpx does when it builds the request.
        host = httpx.URL(url).host
    except (httpx.InvalidURL, UnicodeError):  # IDNA errors are UnicodeErrors
        return "url is not a valid URL (check its host and port)"
    return None if host else "url has no host"


def _host_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "url has no parseable host and port (an IPv6 address needs its [brackets])"
    if not parts.hostname:
        return "url has no host"
    if port == 0:
        return "url's port must be between 1 and 65535"
    return None


def header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as given, or None; the value (a secret) is never quoted."""
    if not _HEADER_NAME.fullmatch(name):
        return f"header name {name!r} must be letters, digits and !#$%&'*+.^_`|~-"
    if not value.isascii() or any(not ch.isprintable() and ch != "\t" for ch in value):
        return f"header {name} must be printable ASCII (no line breaks)"
    return None


class RouteType(StrEnum):
    SLACK = "slack"
    WEBHOOK = "webhook"
    CONSOLE = "console"
    ALERTMANAGER = "alertmanager"


#: Prometheus's resend_delay: how often an alertmanager route re-posts what still fires.
DEFAULT_RESEND_INTERVAL = timedelta(minutes=1)


class RouteSettings(BaseModel):
    """One destination: where messages go and which checks and severities it wants."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(description="The route's name, used by `alerts test --route`.")
    type: RouteType = Field(description="Where messages go.")
    url: SecretStr | None = Field(default=None, description="Webhook URL (a secret).")
    urls: tuple[SecretStr, ...] = Field(
        default=(),
        description="Alertmanager base URLs, e.g. http://alertmanager-0:9093 (alertmanager "
        "routes; secrets: they may hold credentials); `url` serves for a single one.",
    )
    resend_interval: PositiveDuration | None = Field(
        default=None,
        description="How often an alertmanager route re-posts its firing alerts (1m when "
        "unset); each is valid for 4 times this (its endsAt).",
    )
    min_severity: Severity = Field(
        default=Severity.WARNING, description="Least severity this route receives."
    )
    checks: tuple[str, ...] | None = Field(
        default=None, description="Only these checks; all checks when absent."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra HTTP headers (webhook), e.g. Authorization."
    )
    send_resolved: bool = Field(
        default=True, description="Whether to send a message when an alert resolves."
    )
    digest: bool = Field(
        default=False,
        description="Slack only: one message per delivery pass listing every changed alert "
        "of this route, instead of one message each.",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _ROUTE_NAME.fullmatch(value):
            raise ValueError("must be letters, digits, '_', '.' or '-' (at most 63)")
        return value

    @model_validator(mode="after")
    def _url_matches_type(self) -> RouteSettings:
        problem = _option_problem(self) or _type_problem(self) or _urls_problem(self)
        if problem is None and self.type is RouteType.SLACK and self.headers:
            problem = "Slack incoming webhooks take no extra headers"
        for name, value in self.headers.items():
            problem = problem or header_problem(name, value.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def endpoints(self) -> tuple[SecretStr, ...]:
        """Where this route posts: its `urls`, or its one `url` (none for a console route)."""
        return self.urls or ((self.url,) if self.url is not None else ())

    @property
    def resend_every(self) -> timedelta:
        """An alertmanager route's re-send interval (resend_interval, 1m when unset)."""
        return self.resend_interval or DEFAULT_RESEND_INTERVAL

    def wants(self, check: str, severity: Severity) -> bool:
        """Whether a check's alerts go to this route."""
        if self.checks is not None and check not in self.checks:
            return False
        return severity.rank >= self.min_severity.rank


def _option_problem(route: RouteSettings) -> str | None:
    """An option the route's type does not take."""
    if route.digest and route.type is not RouteType.SLACK:
        # An Alertmanager-style receiver keys and groups each alert itself, and takes
        # one Idempotency-Key per message: a digest would only hide those from it.
        return "digest = true is for slack routes only"
    if route.type is RouteType.ALERTMANAGER and not route.send_resolved:
        # Alertmanager decides per receiver whether to notify resolved alerts; without the
        # resolved message it would keep the alert firing until its endsAt passes.
        return ("an alertmanager route always sends resolved alerts; set send_resolved "
                "on the Alertmanager receiver instead")  # fmt: skip
    return None


def _type_problem(route: RouteSettings) -> str | None:
    """What the route's type forbids or lacks, never quoting a URL."""
    kind = route.type
    if kind is not RouteType.ALERTMANAGER:
        if route.urls:
            return f"urls is for alertmanager routes; a {kind.value} route takes one url"
        if route.resend_interval is not None:
            return "resend_interval is for alertmanager routes"
    if kind is RouteType.CONSOLE:
        return "a console route takes no url" if route.url is not None else None
    if route.url is not None and route.urls:
        return "give url (one Alertmanager) or urls (several), not both"
    if not route.endpoints:
        more = " (or urls, for several Alertmanagers)" if kind is RouteType.ALERTMANAGER else ""
        article = "an" if kind is RouteType.ALERTMANAGER else "a"
        return f"{article} {kind.value} route needs a url{more}"
    return None


def _urls_problem(route: RouteSettings) -> str | None:
    """Why one of the route's URLs cannot be posted to, named by its place in `urls`."""
    seen: dict[str, int] = {}
    for index, secret in enumerate(route.endpoints):
        url = secret.get_secret_value()
        where = f"urls[{index}]: " if route.urls else ""
        problem = url_problem(url)
        if problem is None and route.type is RouteType.ALERTMANAGER:
            problem = _base_url_problem(url)
        if problem is not None:
            return where + problem
        key = url.rstrip("/")
        if key in seen:
            return f"urls[{seen[key]}] and urls[{index}] are the same Alertmanager"
        seen[key] = index
    return None


def _base_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "an Alertmanager url is a base URL (/api/v2/alerts is added): no ? or #"
    if parts.path.rstrip("/").endswith("/api/v2/alerts"):
        return "an Alertmanager url is its base URL, without /api/v2/alerts"
    return None


class AlertsSettings(BaseModel):
    """How alerts behave and where they go."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    routes: tuple[RouteSettings, ...] = Field(
        default=(),
        description="Destinations of alert messages (Slack, webhook, Alertmanager, console).",
    )
    repeat_interval: Duration = Field(
        default=timedelta(hours=4), description="Reminder interval while an alert keeps firing."
    )
    critical_after: int = Field(default=1, ge=1, description="Failing runs before critical fires.")
    warning_after: int = Field(default=2, ge=1, description="Failing runs before warning fires.")
    info_after: int = Field(default=2, ge=1, description="Failing runs before info fires.")
    dashboard_url: str | None = Field(
        default=None,
        description="Link shown in every message, with var-check=<check> added so the shipped "
        "Grafana dashboard opens on the alert's check.",
    )
    external_url: str | None = Field(
        default=None,
        description="Where people reach this dq-monitor (its status page), e.g. "
        "https://dq-monitor.example.com; sent as externalURL and generatorURL.",
    )
    heartbeat_url: SecretStr | None = Field(
        default=None, description="Pinged after each successful cycle (a dead man's switch)."
    )
    delivery_interval: Duration = Field(
        default=timedelta(seconds=2), description="How often the service delivers the outbox."
    )
    max_delivery_age: Duration = Field(
        default=timedelta(hours=24),
        description="A message still undelivered after this long is marked dead.",
    )
    request_timeout: Duration = Field(
        default=timedelta(seconds=10), description="HTTP timeout of each delivery attempt."
    )

    @field_validator("heartbeat_url")
    @classmethod
    def _valid_heartbeat_url(cls, value: SecretStr | None) -> SecretStr | None:
        problem = None if value is None else url_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("external_url")
    @classmethod
    def _valid_external_url(cls, value: str | None) -> str | None:
        problem = None if value is None else url_problem(value)
        if problem is not None:
            raise ValueError(problem.replace("url", "external_url", 1))
        return value.rstrip("/") if value is not None else None

    @model_validator(mode="after")
    def _unique_route_names(self) -> AlertsSettings:
        names = [r.name for r in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def pending_runs(self, severity: Severity) -> int:
        """Consecutive failing runs before an alert of this severity fires."""
        return {
            Severity.CRITICAL: self.critical_after,
            Severity.WARNING: self.warning_after,
            Severity.INFO: self.info_after,
        }[severity]

    def route(self, name: str) -> RouteSettings | None:
        return next((r for r in self.routes if r.name == name), None)
