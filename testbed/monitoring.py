"""The monitoring manifests, their generated copies, and a small PromQL reader for tests.

Two files are generated so that nobody has to keep them in step by hand:

* ``manifests/monitoring/rules/kitgc-alerts.rules.yml`` (a plain Prometheus rules file, for
  ``promtool`` and for Prometheus without the Operator) from the PrometheusRule;
* ``manifests/monitoring/grafana-dashboard-configmap.yaml`` (for Grafana's dashboard
  sidecar) from ``grafana-dashboard.json``.

Regenerate both with ``python -m testbed.monitoring``; the tests fail while a
generated file differs from what this module renders.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]  # testbed/ is at the repository root
MONITORING = ROOT / "manifests" / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
PLAIN_RULES = MONITORING / "rules" / "kitgc-alerts.rules.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
DASHBOARD_CONFIGMAP = MONITORING / "grafana-dashboard-configmap.yaml"
PROMTOOL_TESTS = ROOT / "tests" / "promtool"
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/camel-k-kit-gc/camel-k-kit-gc/blob/main/docs/runbook.md"
DASHBOARD_KEY = "camel-k-kit-gc.json"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rule_groups() -> list[dict[str, Any]]:
    """The groups of the PrometheusRule: the source of truth."""
    groups: list[dict[str, Any]] = load_yaml(PROMETHEUS_RULE)["spec"]["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def render_plain_rules() -> str:
    header = (
        "# GENERATED from ../prometheusrule.yaml by `python -m testbed.monitoring`;\n"
        "# do not edit. The timing constants are explained there and in docs/runbook.md.\n"
    )
    body = yaml.safe_dump({"groups": rule_groups()}, sort_keys=False, width=1000, allow_unicode=True)
    return header + body


def render_dashboard_configmap() -> str:
    dashboard = json.loads(DASHBOARD.read_text())
    text = json.dumps(dashboard, indent=2, ensure_ascii=False)
    indented = "\n".join(("    " + line) if line else "" for line in text.splitlines())
    return (
        "# GENERATED from grafana-dashboard.json by `python -m testbed.monitoring`; do not edit.\n"
        "# Grafana's dashboard sidecar (kube-prometheus-stack: grafana.sidecar.dashboards) loads\n"
        "# every ConfigMap labelled grafana_dashboard: \"1\"; for a manual import use the JSON file.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: camel-k-kit-gc-dashboard\n"
        "  labels:\n"
        "    grafana_dashboard: \"1\"\n"
        "    app.kubernetes.io/name: camel-k-kit-gc\n"
        "    app.kubernetes.io/component: monitoring\n"
        "data:\n"
        f"  {DASHBOARD_KEY}: |\n"
        f"{indented}\n"
    )


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel, rows included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((panel.get("title", ""), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return found


_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "inf", "nan"})


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (a lexer, not a parser: good enough for our queries).

    Strings, label matchers, ranges, Grafana variables, numbers, durations, label lists of
    ``by``/``on``/… and function names are removed; what is left are metric names.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+|ms|[smhdwy])?\b", " ", text, flags=re.IGNORECASE)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def promql_for_promtool(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, so promtool can check it."""
    return (expr.replace("$__rate_interval", "5m").replace("$__range", "1d").replace("$__interval", "1m")
            .replace("${instance:regex}", ".+").replace("$instance", ".+"))


def main() -> int:
    PLAIN_RULES.parent.mkdir(parents=True, exist_ok=True)
    PLAIN_RULES.write_text(render_plain_rules())
    DASHBOARD_CONFIGMAP.write_text(render_dashboard_configmap())
    for path in (PLAIN_RULES, DASHBOARD_CONFIGMAP):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
