"""Write the manifests that deploy/kubernetes/ derives from examples/ (run it from anywhere).

prometheusrule.yaml carries examples/prometheus/dq-monitor-rules.yml's groups and
grafana-dashboard.yaml carries examples/grafana/dq-monitor-dashboard.json as it is, so the
rules and the dashboard have one source each. `--check` writes nothing and exits 1 when a
committed file is out of step (tests/test_kubernetes.py does the same in memory).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RULES = Path("examples/prometheus/dq-monitor-rules.yml")
DASHBOARD = Path("examples/grafana/dq-monitor-dashboard.json")
LABELS = {"app.kubernetes.io/name": "dq-monitor"}
COMMAND = "python deploy/kubernetes/generate.py"


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so expressions and the dashboard stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _document(source: Path, what: str, manifest: dict[str, Any]) -> str:
    header = f"# GENERATED from {source.as_posix()} by `{COMMAND}`; do not edit.\n# {what}\n"
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return header + body


def prometheus_rule(root: Path) -> str:
    """The shipped alerting rules as a Prometheus Operator PrometheusRule."""
    rules = yaml.safe_load((root / RULES).read_text(encoding="utf-8"))
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "dq-monitor", "labels": dict(LABELS)},
        "spec": {"groups": rules["groups"]},
    }
    what = "The Prometheus Operator loads it; your Prometheus may select rules by label."
    return _document(RULES, what, manifest)


def dashboard_configmap(root: Path) -> str:
    """The shipped Grafana dashboard as a ConfigMap the Grafana sidecar provisions."""
    dashboard = (root / DASHBOARD).read_text(encoding="utf-8")
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dq-monitor-dashboard",
            "labels": {**LABELS, "grafana_dashboard": "1"},
        },
        "data": {DASHBOARD.name: dashboard},
    }
    what = 'Grafana\'s dashboard sidecar loads ConfigMaps labelled grafana_dashboard: "1".'
    return _document(DASHBOARD, what, manifest)


GENERATED: dict[str, Callable[[Path], str]] = {
    "prometheusrule.yaml": prometheus_rule,
    "grafana-dashboard.yaml": dashboard_configmap,
}


def render(root: Path = ROOT) -> dict[str, str]:
    """File name (in deploy/kubernetes/) -> the text it should hold."""
    return {name: build(root) for name, build in GENERATED.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of step"
    )
    args = parser.parse_args(argv)
    out_dir = ROOT / "deploy" / "kubernetes"
    stale = []
    for name, text in render(ROOT).items():
        path = out_dir / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of step: {', '.join(stale)}; run `{COMMAND}`", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote deploy/kubernetes/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
