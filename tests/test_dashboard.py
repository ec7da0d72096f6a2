"""The Grafana dashboard and the queries in docs/metrics.md: valid PromQL on metrics the collector pushes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitgc.metrics import build_registry
from kitgc.outcome import RunSummary
from testbed.monitoring import (
    DASHBOARD,
    DASHBOARD_CONFIGMAP,
    DASHBOARD_KEY,
    MONITORING,
    ROOT,
    dashboard_targets,
    promql_for_promtool,
    promql_metric_names,
    render_dashboard_configmap,
)

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
METRICS_DOC = ROOT / "docs" / "metrics.md"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def pushed_metric_names() -> set[str]:
    summary = RunSummary(outcome="success", exit_code=0, dry_run=False, started_at=0.0, duration_seconds=1.0)
    return {m.name for m in build_registry(summary, version="test").collect()}


def test_every_panel_query_references_only_pushed_metrics() -> None:
    pushed = pushed_metric_names()
    targets = dashboard_targets(dashboard())
    assert targets
    for title, expr in targets:
        used = promql_metric_names(expr)
        assert used, (title, expr)
        assert used <= pushed, (title, used - pushed)


def test_template_variables_query_pushed_metrics() -> None:
    pushed = pushed_metric_names()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
            assert metric and metric.group(1) in pushed, query


def test_dashboard_shows_what_operators_ask_for() -> None:
    used = set().union(*(promql_metric_names(e) for _, e in dashboard_targets(dashboard())))
    wanted = {
        "kitgc_last_success_timestamp_seconds", "kitgc_run_outcome", "kitgc_manifests_scanned",
        "kitgc_manifests_referenced", "kitgc_manifests_eligible", "kitgc_manifests_deleted",
        "kitgc_bytes_reclaimable", "kitgc_delete_failures", "kitgc_run_duration_seconds", "kitgc_dry_run",
    }
    assert wanted <= used, wanted - used


def promtool_accepts(exprs: list[str], tmp_path: Path) -> None:
    """promtool parses each expression (as a recording rule): the only PromQL parser at hand."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: `make test` installs the Debian package prometheus")
    rules = [{"record": f"kitgc:query:{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    promtool_accepts([promql_for_promtool(e) for _, e in dashboard_targets(dashboard())], tmp_path)


def documented_queries() -> list[str]:
    """Each query of the ```promql blocks of docs/metrics.md (comment lines separate them)."""
    queries: list[str] = []
    for block in re.findall(r"```promql\n(.*?)```", METRICS_DOC.read_text(), re.DOTALL):
        current: list[str] = []
        for line in [*block.splitlines(), "#"]:
            if line.startswith("#") or not line.strip():
                if current:
                    queries.append(" ".join(current))
                current = []
            else:
                current.append(line.strip())
    return queries


def test_documented_queries_are_valid_and_use_pushed_metrics(tmp_path: Path) -> None:
    queries = documented_queries()
    assert len(queries) >= 5
    pushed = pushed_metric_names()
    for query in queries:
        assert promql_metric_names(query) <= pushed, query
    promtool_accepts(queries, tmp_path)


def test_every_panel_uses_the_datasource_variable() -> None:
    board = dashboard()
    assert 38 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    for panel in panels:
        assert panel["datasource"] == DS, panel["title"]
        assert all(t["datasource"] == DS for t in panel["targets"]), panel["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_configmap_carries_the_dashboard_json_and_the_sidecar_label() -> None:
    configmap = yaml.safe_load(DASHBOARD_CONFIGMAP.read_text())
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"][DASHBOARD_KEY]) == dashboard()
    assert DASHBOARD_CONFIGMAP.read_text() == render_dashboard_configmap(), \
        "run: python -m testbed.monitoring"


def test_monitoring_kustomization_renders_the_rule_and_the_dashboard() -> None:
    kubectl = shutil.which("kubectl") or str(ROOT / ".venv" / "bin" / "kubectl")
    if not Path(kubectl).exists():
        pytest.skip("kubectl not installed (make install brings one)")
    result = subprocess.run([kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout) if d}
    assert kinds == {("PrometheusRule", "camel-k-kit-gc"), ("ConfigMap", "camel-k-kit-gc-dashboard")}


@pytest.mark.parametrize(("expr", "names"), [
    ('time() - max by (instance) (kitgc_last_success_timestamp_seconds{instance=~"$instance"})',
     {"kitgc_last_success_timestamp_seconds"}),
    ('kitgc_delete_failures > 0 unless kitgc_registry_deletion_disabled == 1',
     {"kitgc_delete_failures", "kitgc_registry_deletion_disabled"}),
    ('rate(kitgc_manifest_deleted_total[5m]) offset 1h', {"kitgc_manifest_deleted_total"}),
    ('absent(kitgc_last_run_timestamp_seconds{job="x by (y)"})', {"kitgc_last_run_timestamp_seconds"}),
])
def test_metric_name_reader_finds_exactly_the_selected_metrics(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names
