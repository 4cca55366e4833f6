"""The shipped Prometheus rules, scrape configuration and Grafana dashboard are valid and only
use metrics the exporter really exports (taken from an in-process exposition, not a list)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from alerts import SystemClock
from checks import REGISTRY, all_checks
from config import load_settings
from monitor.service.metrics import DatabaseView, StatsCache, StatsSnapshot, build_registry
from monitor.store import DURATION_BUCKETS, CheckStats, StateStore, StoreStats

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "examples" / "prometheus"
RULES = PROMETHEUS_DIR / "dq-monitor-rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "dq-monitor-rules.test.yml"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DASHBOARD = ROOT / "examples" / "grafana" / "dq-monitor-dashboard.json"

SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook_url"}
REQUIRED_ALERTS = {
    "DqCriticalCheckViolations",
    "DqWarningCheckViolations",
    "DqCheckStale",
    "DqMonitorAbsent",
    "DqDatabaseUnreachable",
    "DqCheckErroring",
}
DATASOURCE = "${datasource}"
# Grafana's own variables (docs: dashboards/variables/add-template-variables, "Global
# variables"); `__all` is the value a multi-value variable holds when All is picked.
GRAFANA_GLOBALS = {
    "__rate_interval": "2m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
    "__from": "0",
    "__to": "0",
    "__all": "",
    "__dashboard": "dq-monitor",
}
# What Grafana substitutes for the dashboard's own variables, to let promtool parse the
# panels; `check` as a deep link `?var-check=dashboard_mismatch` sets it, `database` as
# `?var-database=default`.
GRAFANA_VARIABLES = {
    "job": "dq-monitor",
    "instance": ".*",
    "check": "dashboard_mismatch",
    "database": "default",
    **GRAFANA_GLOBALS,
}
# Every way Grafana spells a variable reference: $name, ${name} and ${name:format}, [[name]].
VARIABLE_REFERENCE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed; install Debian's package: apt-get install prometheus"
        )
    return subprocess.run(
        [path, *args], cwd=cwd, text=True, capture_output=True, check=False, timeout=60
    )


# --- PromQL: which identifiers an expression uses as metric names.

PROMQL_FUNCTIONS = {
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
    # functions (Prometheus 2.42)
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_count", "histogram_sum", "histogram_fraction", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh",
    "sin", "sinh", "tan", "tanh", "deg", "pi", "rad",
}  # fmt: skip
PROMQL_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "atan2", "inf", "nan",
}  # fmt: skip


def promql_identifiers(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) used by a PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables outside strings
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # range and subquery selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?[0-9a-zA-Z]+", " ", text)
    text = re.sub(r"@\s*(?:start\s*\(\s*\)|end\s*\(\s*\)|[0-9.]+)", " ", text)
    text = re.sub(
        r"(?<![\w:.])(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", " ", text
    )
    metrics, functions = set(), set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group()
        if name.lower() in PROMQL_KEYWORDS:
            continue
        if re.match(r"\s*\(", text[match.end() :]):
            functions.add(name)
        else:
            metrics.add(name)
    return metrics, functions


def test_promql_identifiers_strip_everything_but_metric_names():
    expr = (
        'histogram_quantile(0.95, sum by (check, le) (rate(a_bucket{job=~"$job", x="y(z)"}'
        "[$__rate_interval]))) > bool 1e3\nunless on () group_left (sev) b:rate5m offset 5m "
        "and ignoring (instance) max(c[5m:1m]) / time() * -0x1F or d @ start() or inf\n"
        "unless (e) and(f)"
    )
    assert promql_identifiers(expr) == (
        {"a_bucket", "b:rate5m", "c", "d", "e", "f"},
        {"histogram_quantile", "sum", "rate", "max", "time"},
    )


# --- The exporter's real exposition.


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> list[Metric]:
    """The metric families of an exposition from the project's own collector."""
    # A route, or the per-route delivery families would carry no samples.
    config = tmp_path_factory.mktemp("exposition") / "dq-monitor.toml"
    config.write_text('[[alerts.routes]]\nname = "team"\ntype = "console"\n')
    settings = load_settings(config)
    now = dt.datetime.now(dt.UTC)
    row = {
        "last_violations": 2,
        "last_status": "violation",
        "last_run_at": now,
        "last_success_at": now,
        "runs_total": 10,
        "errors_total": 1,
        "missed_total": 1,
        "overlaps_total": 1,
        "duration_buckets": (1,) * (len(DURATION_BUCKETS) + 1),
        "duration_sum": 3.5,
    }
    views = {}
    for database in ("default", "eu"):  # two monitored databases, as a fleet serves them
        # refresh() is never called, so the cache needs no state store.
        cache = StatsCache(cast(StateStore, None), SystemClock())
        cache.snapshot = StatsSnapshot(
            stats=StoreStats(
                checks={c.name: CheckStats(c.name, **row) for c in all_checks(settings)},
                service={"database": {"up": True}},
            ),
            loaded_at=time.time(),
        )
        cache.store_up = True
        views[database] = DatabaseView(settings, cache, lambda: True)
    registry = build_registry(settings, views)
    return list(text_string_to_metric_families(generate_latest(registry).decode()))


@pytest.fixture(scope="module")
def exported_names(exposition: list[Metric]) -> set[str]:
    """Every family and sample name in the exposition."""
    names: set[str] = set()
    for family in exposition:
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # Sanity: the exposition is the real one, histogram and counter samples included.
    assert {"dq_check_duration_seconds_bucket", "dq_check_runs_total", "dq_leader",
            "dq_alert_messages_dead_total", "dq_alert_delivery_seconds_bucket"} <= names
    return names



@pytest.fixture(scope="module")
def per_database_names(exposition: list[Metric]) -> set[str]:
    """The sample names that carry a `database` label: what the `database` variable filters
    and what every rule must aggregate by database."""
    names = {s.name for family in exposition for s in family.samples if "database" in s.labels}
    assert {"dq_check_violations", "dq_leader", "dq_database_up", "dq_gate_open",
            "dq_alert_messages_dead_total"} <= names  # fmt: skip
    replica = {s.name for family in exposition for s in family.samples} - names
    assert replica == {"dq_state_store_up", "dq_metrics_snapshot_timestamp_seconds",
                       "dq_build_info"}, replica  # fmt: skip
    return names


@pytest.fixture(scope="module")
def per_check_names(exposition: list[Metric]) -> set[str]:
    """The sample names that carry a `check` label: what the `check` variable filters."""
    names = {s.name for family in exposition for s in family.samples if "check" in s.labels}
    assert {"dq_check_violations", "dq_check_duration_seconds_bucket"} <= names
    return names


def assert_known_promql(expr: str, exported: set[str], where: str) -> None:
    metrics, functions = promql_identifiers(expr)
    assert metrics, f"{where}: no metric in {expr!r}"
    unknown_metrics = metrics - exported
    assert not unknown_metrics, f"{where}: {sorted(unknown_metrics)} not exported; {expr!r}"
    unknown_functions = functions - PROMQL_FUNCTIONS
    assert not unknown_functions, f"{where}: unknown PromQL {sorted(unknown_functions)}"


# --- Alerting rules.


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert [g["name"] for g in groups] == ["dq-monitor"]
    return cast(list[dict[str, Any]], groups[0]["rules"])


def test_promtool_check_rules(rules):
    result = promtool("check", "rules", str(RULES.relative_to(ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(rules)} rules found" in output, output


def test_promtool_test_rules():
    result = promtool("test", "rules", RULE_TESTS.name, cwd=PROMETHEUS_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output, output


def test_promtool_check_config_loads_the_rules(rules):
    result = promtool("check", "config", str(SCRAPE_CONFIG.relative_to(ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS: 1 rule files found" in output, output
    assert f"SUCCESS: {len(rules)} rules found" in output, output


def test_scrape_configuration_scrapes_dq_monitor():
    text = SCRAPE_CONFIG.read_text()
    assert re.search(r"^  - job_name: dq-monitor$", text, re.M)
    assert re.search(r"^    scrape_interval: 30s$", text, re.M)
    assert re.search(r"^    scrape_timeout: 10s$", text, re.M)
    assert '"dq-monitor:8477"' in text
    assert re.search(r"^ *# *kubernetes_sd_configs:", text, re.M)


def test_rules_follow_the_conventions(rules):
    names = [rule.get("alert") for rule in rules]
    assert all(names), "only alerting rules belong in this group"
    assert len(set(names)) == len(names), names
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"Dq(?:[A-Z][a-z0-9]+)+", name), name
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no `for:`"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) <= ANNOTATIONS, name
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert annotations.get("description", "").strip(), f"{name}: no description"
        text = annotations["summary"] + annotations["description"]
        if "check)" in rule["expr"]:
            assert "by (database, check)" in rule["expr"], name
            assert "$labels.check" in text, name
        if "by (database" in rule["expr"]:
            assert "$labels.database" in annotations["summary"], name
            assert "$labels.database" in annotations["description"], name


AGGREGATION = re.compile(r"\b(sum|max|min|avg|count|group)\s*(?:by\s*\(([^)]*)\))?\s*\(")
MATCHING = re.compile(r"\b(?:on|ignoring)\s*\(([^)]*)\)")


def test_rules_keep_the_database_apart(rules, per_database_names):
    """A rule over per-database series aggregates and matches by `database`, so each alert is
    one database's (and carries the label dq-monitor's own alerts carry), never a mix."""
    checked = 0
    for rule in rules:
        metrics = promql_identifiers(rule["expr"])[0]
        if not metrics & per_database_names:
            continue
        checked += 1
        aggregations = list(AGGREGATION.finditer(rule["expr"]))
        assert aggregations, f"{rule['alert']}: per replica, not per database"
        for match in aggregations:
            by = [label.strip() for label in (match.group(2) or "").split(",")]
            assert by[0] == "database", f"{rule['alert']}: {match.group()!r}"
        for match in MATCHING.finditer(rule["expr"]):
            assert "database" in match.group(1), f"{rule['alert']}: {match.group()!r}"
    assert checked >= 10


def test_rules_use_only_exported_metrics(rules, exported_names):
    # `absent()` of a metric that is never exported would fire forever.
    for rule in rules:
        assert_known_promql(rule["expr"], exported_names, rule["alert"])


def test_every_rule_has_a_firing_and_a_quiet_unit_test(rules):
    suite = yaml.safe_load(RULE_TESTS.read_text())
    assert suite["rule_files"] == [RULES.name]
    cases = [case for test in suite["tests"] for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    names = {rule["alert"] for rule in rules}
    assert names - fired == set(), "rules never tested firing"
    assert names - quiet == set(), "rules never tested staying quiet"
    assert {case["alertname"] for case in cases} <= names
    for case in cases:
        for alert in case["exp_alerts"]:
            assert set(alert["exp_annotations"]) >= {"summary", "description"}, case
            assert "severity" in alert["exp_labels"], case


# --- Grafana dashboard.


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(DASHBOARD.read_text()))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _panels(panel.get("panels", []))
        else:
            yield panel


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _all_panels(panel.get("panels", []))


def _panel_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) for every panel target; fails on a panel without a query."""
    panels = list(_panels(dashboard["panels"]))
    assert panels, "the dashboard has no panels"
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        targets = panel.get("targets") or []
        assert targets, f"{where} has no targets"
        for target in targets:
            expr = (target.get("expr") or "").strip()
            assert expr, f"{where} target {target.get('refId')} has no expr"
            yield f"{where} target {target['refId']}", expr


def _variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def test_dashboard_is_importable(dashboard):
    assert dashboard["id"] is None
    assert dashboard["uid"] == "dq-monitor"
    # No `__inputs`: file provisioning never substitutes them, and an import through the UI
    # needs none, the `datasource` variable picks the default Prometheus and offers the others.
    assert "__inputs" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    assert datasource["current"]["value"] == "default"
    ids = [panel["id"] for panel in _all_panels(dashboard["panels"])]
    assert len(set(ids)) == len(ids), ids


def test_every_panel_and_variable_uses_the_datasource_variable(dashboard):
    def uses_variable(datasource: Any) -> bool:
        return isinstance(datasource, dict) and datasource == {
            "type": "prometheus", "uid": DATASOURCE
        }

    for panel in _panels(dashboard["panels"]):
        assert uses_variable(panel.get("datasource")), panel["title"]
        for target in panel.get("targets", []):
            assert uses_variable(target.get("datasource")), panel["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert uses_variable(variable.get("datasource")), variable["name"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_provisioned_as_is_every_variable_resolves(dashboard):
    """Grafana's file provisioning loads the JSON unchanged (no `__inputs` substitution): every
    variable reference anywhere in it must be a templating variable or a Grafana global, or
    panels show "datasource ${DS_PROMETHEUS} not found". Stands in for loading it in Grafana."""
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "instance", "database", "check"} <= defined
    used = set()
    for text in _strings(dashboard):
        for match in VARIABLE_REFERENCE.finditer(text):
            used.add(next(group for group in match.groups() if group))
    assert used, "no variable is used at all"
    unresolved = used - defined - set(GRAFANA_GLOBALS)
    assert not unresolved, f"unresolved variables: {sorted(unresolved)}"
    assert {"datasource", "database", "check"} <= used


def test_the_check_variable_deep_links_to_one_check(dashboard, per_check_names, exported_names):
    """`?var-check=NAME` (an alert's dashboard link) narrows every per-check panel to NAME: the
    variable is multi-value with All, and every selector of a per-check metric filters on it."""
    check = {v["name"]: v for v in dashboard["templating"]["list"]}["check"]
    assert check["type"] == "query"
    assert (check["multi"], check["includeAll"], check["allValue"]) == (True, True, ".*")
    query = re.fullmatch(r"label_values\((.+), check\)", _variable_query(check))
    assert query, _variable_query(check)
    assert set(promql_identifiers(query.group(1))[0]) <= per_check_names
    filtered = 0
    for where, expr in _panel_exprs(dashboard):
        for metric in promql_identifiers(expr)[0] & per_check_names:
            for selector in re.finditer(rf"\b{metric}\b(\{{[^}}]*\}})?", expr):
                assert 'check=~"$check"' in (selector.group(1) or ""), f"{where}: {expr!r}"
                filtered += 1
    assert filtered >= 10, "the per-check panels are gone"


def test_the_database_variable_filters_every_per_database_selector(
    dashboard, per_database_names
):
    """`?var-database=NAME` narrows every panel to one monitored database: the variable is
    multi-value with All, sits before `check` (whose values follow it), and every selector of
    a series that carries `database` filters on it. The leadership count per database reads
    every replica on purpose; every other per-database selector also keeps `$instance`."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    names = list(variables)
    assert names.index("instance") < names.index("database") < names.index("check"), names
    database = variables["database"]
    assert database["type"] == "query"
    assert (database["multi"], database["includeAll"], database["allValue"]) == (True, True, ".*")
    query = re.fullmatch(r"label_values\((.+), database\)", _variable_query(database))
    assert query, _variable_query(database)
    assert set(promql_identifiers(query.group(1))[0]) <= per_database_names
    assert 'database=~"$database"' in _variable_query(variables["check"])
    filtered = 0
    for where, expr in _panel_exprs(dashboard):
        for metric in promql_identifiers(expr)[0] & per_database_names:
            for selector in re.finditer(rf"\b{metric}\b(\{{[^}}]*\}})?", expr):
                assert 'database=~"$database"' in (selector.group(1) or ""), f"{where}: {expr!r}"
                filtered += 1
        # Series of several databases are told apart: aggregated and legended by database.
        for match in re.finditer(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
            labels = {label.strip() for label in match.group(1).split(",")}
            if labels & {"check", "plan", "route"}:
                assert "database" in labels, f"{where}: {match.group()!r}"
    assert filtered >= 30, "the per-database panels are gone"
    for panel in _panels(dashboard["panels"]):
        for target in panel["targets"]:
            metrics = promql_identifiers(target["expr"])[0]
            legend = target.get("legendFormat", "")
            if metrics & per_database_names and legend not in ("__auto", "{{instance}}"):
                assert "{{database}}" in legend, f"{panel['title']}: {legend!r}"


def test_dashboard_has_the_gate_and_delivery_rows(dashboard):
    rows = {}
    current = None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], [])
        elif current is not None:
            current.extend(target["expr"] for target in panel["targets"])
    gate = " ".join(rows["Migration gate"])
    gate_metrics = ("dq_gate_open", "dq_gate_clean_since_timestamp_seconds",
                    "dq_gate_required_seconds")  # fmt: skip
    for name in gate_metrics:
        assert name in gate, name
    delivery = " ".join(rows["Alert delivery"])
    for name in ("dq_alert_messages_delivered_total", "dq_alert_delivery_retries_total",
                 "dq_alert_messages_dead_total", "dq_alert_delivery_seconds_bucket",
                 "dq_alert_outbox_pending"):  # fmt: skip
        assert name in delivery, name


def test_dashboard_panels_use_only_exported_metrics(dashboard, exported_names):
    for where, expr in _panel_exprs(dashboard):
        assert_known_promql(expr, exported_names, where)


def test_template_variables_query_exported_metrics(dashboard, exported_names):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"job", "instance", "check"} <= set(variables)
    for name, variable in variables.items():
        if variable["type"] != "query":
            continue
        query = _variable_query(variable)
        match = re.fullmatch(r"\s*label_values\((.+),\s*([A-Za-z_]\w*)\s*\)\s*", query, re.S)
        assert match, f"variable {name}: unsupported query {query!r}"
        assert_known_promql(match.group(1), exported_names, f"variable {name}")
    for name in ("job", "instance"):
        assert "dq_build_info" in _variable_query(variables[name]), name


def test_dashboard_queries_parse_as_promql(dashboard, tmp_path):
    # promtool parses every expression as a recording rule once Grafana's variables are filled.
    def substitute(expr: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = next(group for group in match.groups() if group)
            assert name in GRAFANA_VARIABLES, f"unknown Grafana variable ${name} in {expr!r}"
            return GRAFANA_VARIABLES[name]

        return VARIABLE_REFERENCE.sub(value, expr)

    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for number, (_, expr) in enumerate(_panel_exprs(dashboard)):
        lines.append(f"      - record: dashboard:query_{number}")
        lines.append(f"        expr: {json.dumps(substitute(expr))}")
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text("\n".join(lines) + "\n")
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Every built-in check, from the registry: a new check cannot be left out.

VIOLATION_ALERTS = {"critical": "DqCriticalCheckViolations", "warning": "DqWarningCheckViolations"}


def test_every_built_in_check_alerts_by_its_default_severity(rules, tmp_path):
    """A promtool test generated from the registry: each built-in check with violations
    fires the alert of its default severity (and not the other one)."""
    by_name = {r["alert"]: r for r in rules if "alert" in r}
    settings = load_settings()
    builtins = [c for c in all_checks(settings) if c.name in REGISTRY]
    assert [c.name for c in builtins] == list(REGISTRY)
    series, asserts = [], []
    for check in builtins:
        severity = check.severity.value
        labels = f'job="dq-monitor", instance="a:8477", database="eu", check="{check.name}"'
        series.append({"series": f'dq_check_info{{{labels}, severity="{severity}"}}',
                       "values": "1+0x60"})  # fmt: skip
        series.append({"series": f"dq_check_violations{{{labels}}}", "values": "2+0x60"})
        for level, alert in VIOLATION_ALERTS.items():
            rule = by_name[alert]
            expected = []
            if level == severity:
                expected.append({
                    "exp_labels": {"severity": level, "database": "eu", "check": check.name},
                    "exp_annotations": {
                        key: text.replace("{{ $labels.check }}", check.name)
                        .replace("{{ $labels.database }}", "eu")
                        .replace("{{ $value }}", "2")
                        for key, text in rule["annotations"].items()
                    },
                })  # fmt: skip
            asserts.append({"eval_time": "45m", "alertname": alert, "exp_alerts": expected})
    # One test per check keeps promtool's comparison to that check's alerts.
    tests = [
        {"interval": "1m", "input_series": series[2 * k : 2 * k + 2],
         "alert_rule_test": asserts[2 * k : 2 * k + 2]}
        for k in range(len(builtins))
    ]  # fmt: skip
    shutil.copy(RULES, tmp_path / RULES.name)
    generated = tmp_path / "registry.test.yml"
    generated.write_text(
        yaml.safe_dump({"rule_files": [RULES.name], "evaluation_interval": "1m", "tests": tests})
    )
    result = promtool("test", "rules", generated.name, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output


def test_dashboard_and_rules_name_no_check(rules, dashboard):
    """Per-check panels and rules select by the `check` label, never by a check's name, so
    every check in the registry (and every custom check) is on them; the dashboard's only
    `check` matcher is its `check` variable."""
    exprs = [r["expr"] for r in rules] + [expr for _, expr in _panel_exprs(dashboard)]
    for expr in exprs:
        without_variable = expr.replace('check=~"$check"', "")
        assert not re.search(r"\bcheck\s*(=|!=|=~|!~)", without_variable), expr
        without_variable = expr.replace('database=~"$database"', "")
        assert not re.search(r"\bdatabase\s*(=|!=|=~|!~)", without_variable), expr
        assert not any(name in expr for name in REGISTRY), expr
