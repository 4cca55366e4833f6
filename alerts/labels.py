"""An alert's identity on the wire: its labels, as the shipped Prometheus rules name them, and
the fingerprint Alertmanager itself derives from those labels."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from config import DEFAULT_DATABASE, Severity

from .notification import Kind, Notification

#: `alerts test` messages: an alertname no Prometheus rule or route matcher uses for a page.
TEST_ALERTNAME = "DqMonitorTest"

# prometheus/common model: FNV-1a 64 over the sorted label names and values, each followed by
# the separator byte 0xff (LabelSet.Fingerprint, labelSetToFingerprint).
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF
_MASK = (1 << 64) - 1


def alertname(severity: Severity, kind: Kind = Kind.FIRING) -> str:
    """The rule name for a check's violations: DqCriticalCheckViolations, DqWarningCheckViolations
    (both shipped in examples/prometheus/dq-monitor-rules.yml) or DqInfoCheckViolations."""
    if kind is Kind.TEST:
        return TEST_ALERTNAME
    return f"Dq{severity.value.capitalize()}CheckViolations"


#: A test message's severity label: no route matching on critical or warning picks it up.
TEST_SEVERITY = "none"


def alert_labels(n: Notification) -> dict[str, str]:
    """The alert's labels, the same set the shipped rule's alert carries (`max by (database,
    check)` keeps only those two; the rule adds `severity`), so either path deduplicates with
    the other, and the same check on two databases is two alerts. A test message is
    `DqMonitorTest` with severity `none`."""
    severity = TEST_SEVERITY if n.kind is Kind.TEST else n.severity.value
    return {
        "alertname": alertname(n.severity, n.kind),
        "database": n.database,
        "check": n.check,
        "severity": severity,
    }


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 16 lower-case hex digits, independent of the
    route, so every receiver sees one identity per alert."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{value:016x}"


def generator_url(external_url: str | None, check: str, database: str = DEFAULT_DATABASE) -> str:
    """The link back to this dq-monitor's status page for `check` ("" without external_url);
    a database other than `default` is named in the query too."""
    if not external_url:
        return ""
    link = f"{external_url}/?check={quote(check, safe='')}"
    if database != DEFAULT_DATABASE:
        link += f"&database={quote(database, safe='')}"
    return link


def dashboard_link(
    dashboard_url: str | None, check: str, database: str = DEFAULT_DATABASE
) -> str | None:
    """`dashboard_url` opened on `check`: `var-check=<check>` added to its query (the shipped
    Grafana dashboard's `check` variable), unless the URL already sets var-check; likewise
    `var-database` for a database other than `default`."""
    if not dashboard_url:
        return dashboard_url
    parts = urlsplit(dashboard_url)
    present = parse_qs(parts.query)
    wanted = [("var-check", check)]
    if database != DEFAULT_DATABASE:
        wanted.append(("var-database", database))
    added = [f"{k}={quote(v, safe='')}" for k, v in wanted if k not in present]
    if not added:
        return dashboard_url
    query = "&".join(q for q in (parts.query, *added) if q)
    return urlunsplit(parts._replace(query=query))
