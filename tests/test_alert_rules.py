"""The alert rules: valid for promtool, unit-tested per alert, in step with the schedule and the docs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kitgc.metrics import build_registry
from kitgc.outcome import RunSummary
from testbed.monitoring import (
    PLAIN_RULES,
    PROMETHEUS_RULE,
    PROMTOOL_TESTS,
    ROOT,
    RUNBOOK,
    RUNBOOK_URL,
    alerts,
    load_yaml,
    promql_metric_names,
    render_plain_rules,
    rule_groups,
)

CRONJOB = ROOT / "manifests" / "base" / "cronjob.yaml"


def promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        pytest.fail("promtool not found: `make test` installs the Debian package prometheus")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def pushed_metric_names() -> set[str]:
    summary = RunSummary(outcome="success", exit_code=0, dry_run=False, started_at=0.0, duration_seconds=1.0)
    return {m.name for m in build_registry(summary, version="test").collect()}


def parse_duration(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


def test_plain_rules_file_passes_promtool_check() -> None:
    result = run(promtool(), "check", "rules", str(PLAIN_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    files = sorted(str(p) for p in PROMTOOL_TESTS.glob("*.yml"))
    assert files
    result = run(promtool(), "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_rules_file_is_generated_from_the_prometheusrule() -> None:
    assert load_yaml(PLAIN_RULES)["groups"] == rule_groups()
    assert PLAIN_RULES.read_text() == render_plain_rules(), "run: python -m testbed.monitoring"


def test_prometheusrule_is_a_prometheus_operator_object() -> None:
    rule = load_yaml(PROMETHEUS_RULE)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"]["name"] == "camel-k-kit-gc"


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in PROMTOOL_TESTS.glob("*.yml"):
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(), re.MULTILINE)}
    for alert in alerts():
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}, alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        url, _, anchor = annotations["runbook_url"].partition("#")
        assert url == RUNBOOK_URL, alert["alert"]
        assert anchor == alert["alert"].lower() and anchor in anchors, alert["alert"]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_alerts_use_only_metrics_the_collector_pushes() -> None:
    pushed = pushed_metric_names()
    for alert in alerts():
        used = promql_metric_names(alert["expr"])
        assert used, alert["alert"]
        assert used <= pushed, (alert["alert"], used - pushed)


def test_not_succeeding_threshold_is_two_schedule_periods_plus_slack() -> None:
    """The alert thresholds follow the CronJob's schedule (see the constants in prometheusrule.yaml)."""
    cronjob = load_yaml(CRONJOB)["spec"]
    schedule = cronjob["schedule"]
    match = re.fullmatch(r"\d+ (\*/(\d+)|\d+) \* \* \*", schedule)
    assert match, f"unrecognised schedule {schedule!r}: update the alert thresholds and this test"
    period = int(match.group(2)) * 3600 if match.group(2) else 86400
    # A run may start startingDeadlineSeconds late and take activeDeadlineSeconds; round up to 30m.
    late = cronjob["startingDeadlineSeconds"] + cronjob["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    slack = -(-late // 1800) * 1800
    by_name = {a["alert"]: a for a in alerts()}
    threshold = int(re.search(r">\s*(\d+)", by_name["KitGCNotSucceeding"]["expr"]).group(1))  # type: ignore[union-attr]
    assert threshold == 2 * period + slack
    for name in ("KitGCNeverSucceeded", "KitGCMetricsMissing"):
        assert parse_duration(by_name[name]["for"]) == period + slack, name
