"""Configuration: every variable's bad value is exit 2 with one line naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitgc.config import VARIABLES, load, parse_bool, parse_duration
from kitgc.errors import ConfigError

BAD_VALUES = {
    "DRY_RUN": "maybe",
    "REGISTRY_ADDRESS": "bad host name/x",
    "REGISTRY_ORGANIZATION": "Camel K",
    "REGISTRY_INSECURE": "perhaps",
    "REGISTRY_CA_FILE": "/nonexistent/ca.pem",
    "REGISTRY_AUTH_FILE": "/nonexistent/config.json",
    "MIN_AGE": "24x",
    "PRUNE_KITS": "2",
    "MAX_DELETIONS": "-1",
    "STATE_CONFIGMAP": "no-slash",
    "PUSHGATEWAY_URL": "ftp://pushgateway",
    "CLUSTER_NAME": "two words",
    "CONCURRENCY": "0",
    "CONCURRENCY_MAX": "0",
    "LOG_FORMAT": "xml",
    "LOG_LEVEL": "verbose",
    "REPORT_FILE": "/nonexistent-dir/report.json",
    "REGISTRY_TIMEOUT": "soon",
    "KUBE_PAGE_SIZE": "0",
    "ALLOW_EMPTY_CLUSTER": "sometimes",
    "KUBE_TIMEOUT": "0",
    "LEASE_DURATION": "forever",
    "KEEP_IMAGES": "acme/Camel-K-kit-*",
    "REFERENCE_KUBECONFIG": "/nonexistent/reference-kubeconfig",
    "REGISTRY_KIND": "docker-registry-v1",
    "REGISTRY_API_URL": "api.github.com",
    "REGISTRY_API_TOKEN_FILE": "/nonexistent/token",
    "DELETE_EMPTY_REPOSITORIES": "mostly",
    "SHARDS": "0",
    "SHARD": "-1",
}
# Free text: any value is valid, so there is no bad value to test.
FREE_TEXT = {"PUSHGATEWAY_USERNAME", "PUSHGATEWAY_PASSWORD"}


def test_every_variable_has_a_bad_value_case() -> None:
    assert {v.env for v in VARIABLES} - FREE_TEXT == set(BAD_VALUES)


def test_defaults_match_the_contract() -> None:
    s = load({})
    assert s.dry_run is True
    assert s.min_age == timedelta(hours=24)
    assert s.prune_kits is True
    assert s.max_deletions == 500
    assert s.state_configmap == ("default", "camel-k-kit-gc-state")
    assert s.concurrency == 16
    assert s.delete_empty_repositories is True
    assert (s.registry_api_url, s.registry_api_token_file) == (None, None)
    assert (s.log_format, s.log_level) == ("json", "info")
    assert s.pushgateway_url is None and s.report_file is None and s.registry_address is None


def test_state_configmap_defaults_to_pod_namespace() -> None:
    assert load({"POD_NAMESPACE": "camel-k"}).state_configmap == ("camel-k", "camel-k-kit-gc-state")


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "TRUE", "On", " Yes "])
def test_truthy_values_are_accepted_in_any_case(value: str) -> None:
    assert parse_bool(value) is True


@pytest.mark.parametrize("value", ["false", "0", "no", "off", "FALSE", "Off"])
def test_falsy_values_are_accepted_in_any_case(value: str) -> None:
    assert parse_bool(value) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", timedelta(0)), ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)),
     ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("1d12h", timedelta(days=1, hours=12))],
)
def test_durations_in_the_contract_forms_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_flag_wins_over_variable() -> None:
    assert load({"MIN_AGE": "1h"}, {"MIN_AGE": "2h"}).min_age == timedelta(hours=2)


def test_empty_variable_counts_as_unset() -> None:
    assert load({"MIN_AGE": "", "DRY_RUN": " "}).min_age == timedelta(hours=24)


def test_organizations_may_contain_slashes() -> None:
    assert load({"REGISTRY_ORGANIZATION": "team/camel-k, other"}).organizations == ("team/camel-k", "other")


def test_password_value_never_appears_in_its_error() -> None:
    with pytest.raises(ConfigError) as exc:
        load({"PUSHGATEWAY_PASSWORD": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(exc.value)
    assert "PUSHGATEWAY_PASSWORD" in str(exc.value)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_bad_value_raises_config_error_naming_the_variable(name: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load({name: BAD_VALUES[name]})
    assert name in str(exc.value)
    assert "\n" not in str(exc.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_duration_parser_never_crashes(text: str) -> None:
    try:
        parse_duration(text)
    except ValueError as exc:
        assert "duration" in str(exc)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_cli_exits_2_with_one_json_line_naming_the_variable(name: str, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in BAD_VALUES and not k.startswith("KUBE")}
    env.update({name: BAD_VALUES[name], "KUBECONFIG": str(tmp_path / "none")})
    proc = subprocess.run([sys.executable, "-m", "kitgc"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    if name != "LOG_FORMAT":
        event = json.loads(lines[0])
        assert event["event"] == "config_error"
        assert name in event["error"]
    else:
        assert name in lines[0]


def test_keep_images_is_unset_by_default_and_parses_every_pattern() -> None:
    assert load({}).keep_images == ()
    patterns = load({"KEEP_IMAGES": " acme/camel-k-kit-abc* , **/camel-k-kit-*:prod-*"}).keep_images
    assert [p.text for p in patterns] == ["acme/camel-k-kit-abc*", "**/camel-k-kit-*:prod-*"]


@pytest.mark.parametrize("value", ["ok/camel-k-kit-a,acme/x:1@sha256:" + "a" * 64, "ok/a,,b", "@sha256:abc",
                                   "acme/x y", "acme/**x"])
def test_bad_keep_images_names_the_variable_and_the_pattern(value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load({"KEEP_IMAGES": value})
    text = str(exc.value)
    assert "KEEP_IMAGES" in text and "\n" not in text
    bad = [p.strip() for p in value.split(",") if not p.strip().startswith("ok/")]
    assert any(repr(p) in text for p in bad) or repr(value) in text
