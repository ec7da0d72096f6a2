"""Registry address and organizations: discovered from platforms, else from the Camel K
operator's environment; explicit settings win; what cannot be seen is never guessed."""

from __future__ import annotations

from typing import Any

import pytest

from kitgc.cluster.discovery import (
    PlatformRegistry,
    from_operator,
    from_platform,
    from_profile,
    registry_origin,
    resolve_targets,
)
from kitgc.cluster.reader import ClusterReader
from kitgc.errors import ConfigError
from kitgc.model import ObjectRef
from testbed import objects as o
from testbed.world import World, events_named


def reg(address, org, insecure=False, kind="IntegrationPlatform", name="camel-k", ns="camel-k"):
    return PlatformRegistry(ObjectRef(kind, name, ns), address, org, insecure, None, None)


def test_platform_status_registry_wins_over_spec():
    obj = o.integration_platform(address="status.example.com", organization=None, insecure=True,
                                 secret="push-secret", ca="registry-ca")
    obj["spec"]["build"]["registry"] = {"address": "spec.example.com", "organization": "other"}
    assert from_platform(obj) == PlatformRegistry(ObjectRef("IntegrationPlatform", "camel-k", "camel-k"),
                                                  "status.example.com", "camel-k", True, "push-secret", "registry-ca")


def test_platform_spec_registry_is_the_fallback_and_organization_defaults_to_namespace():
    obj = o.integration_platform("p", "operators", address="spec.example.com", in_status=False)
    got = from_platform(obj)
    assert got is not None and (got.address, got.organization) == ("spec.example.com", "operators")
    assert from_platform(o.integration_platform(address=None, in_status=False)) is None


def test_profile_registry_inherits_unset_fields():
    got = from_profile(o.integration_profile("p", "team", organization="team-org"))
    assert got is not None and (got.address, got.organization) == (None, "team-org")
    assert from_profile(o.integration_profile("p", "team")) is None


def test_one_discovered_registry_gives_address_organizations_and_insecure():
    platforms = [reg("Registry.Example.com:5000", "camel-k", insecure=True),
                 reg("registry.example.com:5000", "team/camel-k", name="p2", ns="team"),
                 reg(None, "profile-org", kind="IntegrationProfile")]
    assert resolve_targets(platforms, None, None, None) == (
        "registry.example.com:5000", ("camel-k", "profile-org", "team/camel-k"), True)


def test_explicit_settings_win():
    platforms = [reg("registry.example.com", "camel-k", insecure=True)]
    assert resolve_targets(platforms, "other.example.com/prefix", ("mine",), False) == (
        "other.example.com/prefix", ("mine",), False)


def test_explicit_address_takes_organizations_of_the_platforms_on_it():
    platforms = [reg("a.example.com", "org-a"), reg("b.example.com", "org-b", insecure=True)]
    assert resolve_targets(platforms, "b.example.com", None, None) == ("b.example.com", ("org-b",), True)


def test_explicit_address_unknown_to_platforms_is_an_alias_for_their_registry():
    platforms = [reg("kind-registry:5000", "camel-k", insecure=True)]
    assert resolve_targets(platforms, "localhost:5001", None, None) == ("localhost:5001", ("camel-k",), False)


def test_several_registries_without_registry_address_is_a_config_error():
    platforms = [reg("a.example.com", "x"), reg("b.example.com", "y", name="p2")]
    with pytest.raises(ConfigError, match=r"several registries: a.example.com .*b.example.com.*set REGISTRY_ADDRESS"):
        resolve_targets(platforms, None, None, None)


def test_no_registry_found_is_a_config_error_naming_registry_address():
    with pytest.raises(ConfigError, match=r"no registry address found.*set REGISTRY_ADDRESS"):
        resolve_targets([reg(None, "org", kind="IntegrationProfile")], None, None, None)
    with pytest.raises(ConfigError, match="REGISTRY_ADDRESS"):
        resolve_targets([], None, ("org",), None)


def test_no_organization_found_is_a_config_error_naming_registry_organization():
    with pytest.raises(ConfigError, match="set REGISTRY_ORGANIZATION"):
        resolve_targets([], "registry.example.com", None, None)


def test_invalid_discovered_address_is_a_config_error_naming_the_platform():
    with pytest.raises(ConfigError, match=r"IntegrationPlatform camel-k/camel-k.*set REGISTRY_ADDRESS"):
        resolve_targets([reg("not a host", "x")], None, None, None)


def test_reader_discovers_registries_from_platforms_and_profiles(kube):
    kube.add(o.integration_platform(address="registry:5000", organization="kits", insecure=True),
             o.integration_profile("team-profile", "team", organization="team-kits"))
    reader = ClusterReader(kube.client(), backoff=0.001)
    found = reader.platform_registries()
    assert [(r.source.kind, r.address, r.organization, r.insecure) for r in found] == [
        ("IntegrationPlatform", "registry:5000", "kits", True), ("IntegrationProfile", None, "team-kits", False)]
    assert resolve_targets(found, None, None, None) == ("registry:5000", ("kits", "team-kits"), True)
    kube.serve("camel.apache.org", "integrationprofiles", on=False)
    assert len(reader.platform_registries()) == 1
    assert kube.writes() == []


# --- without an IntegrationPlatform: the Camel K operator's environment --------------------------

OPERATOR_LABELS = {"app": "camel-k", "camel.apache.org/component": "operator", "name": "camel-k-operator"}
SECRET_REF = {"secretKeyRef": {"name": "camel-k-registry", "key": "address"}}
CONFIGMAP_REF = {"configMapKeyRef": {"name": "camel-k-settings", "key": "organization"}}
KUSTOMIZE_ENV_FROM = [{"configMapRef": {"name": "camel-k-operator-configmap-configuration", "optional": True}},
                      {"secretRef": {"name": "camel-k-operator-secret-configuration", "optional": True}}]


def operator(name: str = "camel-k-operator", namespace: str = "camel-k", *, env_from: Any = None,
             labels: dict[str, str] | None = None, **env: Any) -> dict[str, Any]:
    """The operator Deployment as Camel K's kustomize manifests and Helm chart write it: labels,
    container ``camel-k-operator``, NAMESPACE from the pod; ``env`` values are strings or a
    ``valueFrom`` dict."""
    values = {"WATCH_NAMESPACE": "", "OPERATOR_ID": "camel-k",
              "NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}}, **env}
    obj = o.deployment(name, namespace, images={"camel-k-operator": "docker.io/apache/camel-k:2.8.0"},
                       labels=OPERATOR_LABELS if labels is None else labels)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": k, "valueFrom": v} if isinstance(v, dict) else {"name": k, "value": v}
                        for k, v in values.items()]
    if env_from:
        container["envFrom"] = env_from
    return obj


def test_operator_env_names_address_organization_and_insecure():
    got = from_operator(operator(REGISTRY_ADDRESS="registry.example.com:5000", REGISTRY_ORGANIZATION="kits",
                                 REGISTRY_INSECURE="true", REGISTRY_SECRET="push"))
    assert got == PlatformRegistry(ObjectRef("Deployment", "camel-k-operator", "camel-k"),
                                   "registry.example.com:5000", "kits", True, "push", None)
    assert got is not None and got.origin == (
        "operator Deployment camel-k/camel-k-operator env REGISTRY_ADDRESS (operator id camel-k)")
    assert resolve_targets([got], None, None, None) == ("registry.example.com:5000", ("kits",), True)
    assert registry_origin([got], None) == got.origin


def test_operator_organization_defaults_to_its_namespace():
    got = from_operator(operator(namespace="operators", REGISTRY_ADDRESS="r.example.com"))
    assert got is not None and (got.organization, got.insecure) == ("operators", False)
    literal = from_operator(operator(namespace="operators", REGISTRY_ADDRESS="r.example.com", NAMESPACE="catalog"))
    assert literal is not None and literal.organization == "catalog"  # GetOperatorNamespace() reads NAMESPACE
    emptied = from_operator(operator(namespace="ops", REGISTRY_ADDRESS="r.example.com", REGISTRY_ORGANIZATION=""))
    assert emptied is not None and emptied.organization == "ops"  # "" defaults too (builder.go getImageName)


def test_operator_insecure_follows_go_parse_bool():
    for value, expected in (("true", True), ("1", True), ("T", True), ("yes", False), ("false", False), ("", False)):
        got = from_operator(operator(REGISTRY_ADDRESS="r.example.com", REGISTRY_INSECURE=value))
        assert got is not None and got.insecure is expected, value


def test_operator_without_registry_address_names_nothing():
    assert from_operator(operator()) is None
    assert from_operator(operator(REGISTRY_ADDRESS="")) is None  # the Helm chart's default
    with pytest.raises(ConfigError, match=r"no registry address found.*operator Deployment.*set REGISTRY_ADDRESS"):
        resolve_targets([], None, None, None)


def test_the_last_env_entry_of_a_name_counts():
    obj = operator(REGISTRY_ADDRESS="first.example.com")
    obj["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "REGISTRY_ADDRESS",
                                                                     "value": "second.example.com"})
    got = from_operator(obj)
    assert got is not None and got.address == "second.example.com"


def test_several_operators_on_one_registry_clean_each_organization():
    ops = [from_operator(operator("camel-k-operator", "team-a", REGISTRY_ADDRESS="r.example.com")),
           from_operator(operator("camel-k-operator", "team-b", REGISTRY_ADDRESS="R.example.com",
                                  REGISTRY_ORGANIZATION="shared/b", REGISTRY_INSECURE="true"))]
    assert resolve_targets(ops, None, None, None) == ("r.example.com", ("shared/b", "team-a"), True)
    assert registry_origin(ops, None) == ("operator Deployment team-a/camel-k-operator env REGISTRY_ADDRESS "
                                          "(operator id camel-k); operator Deployment team-b/camel-k-operator env "
                                          "REGISTRY_ADDRESS (operator id camel-k)")


def test_several_operators_on_different_registries_is_a_config_error_unless_chosen():
    ops = [from_operator(operator("a", "team-a", REGISTRY_ADDRESS="a.example.com")),
           from_operator(operator("b", "team-b", REGISTRY_ADDRESS="b.example.com"))]
    with pytest.raises(ConfigError, match=r"several registries: a.example.com \(Deployment team-a/a\), "
                                          r"b.example.com \(Deployment team-b/b\); set REGISTRY_ADDRESS"):
        resolve_targets(ops, None, None, None)
    assert resolve_targets(ops, "b.example.com", None, None) == ("b.example.com", ("team-b",), False)


@pytest.mark.parametrize(("env", "message"), [
    ({"REGISTRY_ADDRESS": SECRET_REF},
     r"cannot tell the REGISTRY_ADDRESS of the Camel K operator Deployment camel-k/camel-k-operator: it is set "
     r"from Secret camel-k-registry key address \(valueFrom\), which kitgc does not read; set REGISTRY_ADDRESS$"),
    ({"REGISTRY_ADDRESS": "$(REGISTRY_HOST):5000"},
     r"REGISTRY_ADDRESS of .*: its value '\$\(REGISTRY_HOST\):5000' refers to other variables.*set REGISTRY_ADDRESS$"),
    ({"env_from": KUSTOMIZE_ENV_FROM},
     r"REGISTRY_ADDRESS of .*: it may be set by envFrom ConfigMap camel-k-operator-configmap-configuration, "
     r"Secret camel-k-operator-secret-configuration, .*set REGISTRY_ADDRESS$"),
], ids=["secret-ref", "expansion", "kustomize-envFrom"])
def test_an_address_the_manifest_does_not_show_is_never_guessed(env, message):
    ops = [from_operator(operator(**env)), from_operator(operator("other", "elsewhere", REGISTRY_ADDRESS="r.io"))]
    assert ops[0] is not None and ops[0].address is None
    with pytest.raises(ConfigError, match=message):
        resolve_targets(ops, None, None, None)
    with pytest.raises(ConfigError, match=r"REGISTRY_ADDRESS of .*set REGISTRY_ORGANIZATION$"):
        resolve_targets(ops, "r.io", None, None)  # whose organizations would they be?
    assert resolve_targets(ops, "r.io", ("kits",), None) == ("r.io", ("kits",), False)


def test_an_organization_or_insecure_the_manifest_does_not_show_is_never_guessed():
    hidden_org = [from_operator(operator(REGISTRY_ADDRESS="r.io", REGISTRY_ORGANIZATION=CONFIGMAP_REF))]
    with pytest.raises(ConfigError, match=r"REGISTRY_ORGANIZATION of .*ConfigMap camel-k-settings key "
                                          r"organization \(valueFrom\).*set REGISTRY_ORGANIZATION$"):
        resolve_targets(hidden_org, None, None, None)
    assert resolve_targets(hidden_org, None, ("kits",), None) == ("r.io", ("kits",), False)
    hidden_ns = [from_operator(operator(REGISTRY_ADDRESS="r.io", NAMESPACE=CONFIGMAP_REF))]
    with pytest.raises(ConfigError, match=r"it defaults to NAMESPACE, and it is set from ConfigMap"):
        resolve_targets(hidden_ns, None, None, None)
    hidden_insecure = [from_operator(operator(REGISTRY_ADDRESS="r.io", REGISTRY_INSECURE=SECRET_REF))]
    with pytest.raises(ConfigError, match=r"REGISTRY_INSECURE of .*set REGISTRY_INSECURE$"):
        resolve_targets(hidden_insecure, None, None, None)
    assert resolve_targets(hidden_insecure, None, None, True) == ("r.io", ("camel-k",), True)
    # a literal value wins over envFrom (Kubernetes: env before envFrom), so nothing is hidden then
    shown = from_operator(operator(REGISTRY_ADDRESS="r.io", REGISTRY_ORGANIZATION="kits", REGISTRY_INSECURE="false",
                                   env_from=KUSTOMIZE_ENV_FROM))
    assert shown is not None and shown.unread == ()
    assert resolve_targets([shown], None, None, None) == ("r.io", ("kits",), False)


def test_a_profile_inherits_the_operators_registry():
    found = [from_operator(operator(REGISTRY_ADDRESS="r.io")), from_profile(o.integration_profile("p", "team",
                                                                                                organization="team"))]
    assert resolve_targets(found, None, None, None) == ("r.io", ("camel-k", "team"), False)


def test_origins_of_platforms_and_settings():
    status = from_platform(o.integration_platform(address="r.io"))
    spec = from_platform(o.integration_platform("p", "ops", address="r.io", in_status=False))
    assert status is not None and status.origin == "IntegrationPlatform camel-k/camel-k status.build.registry"
    assert spec is not None and spec.origin == "IntegrationPlatform ops/p spec.build.registry"
    assert registry_origin([status], "r.io") == "REGISTRY_ADDRESS"
    assert registry_origin([], None) == ""


def test_reader_platform_wins_over_the_operator(kube):
    kube.add(o.integration_platform(address="platform.example.com", organization="kits"),
             operator(REGISTRY_ADDRESS="operator.example.com"))
    reader = ClusterReader(kube.client(), backoff=0.001)
    found = reader.platform_registries()
    assert [r.address for r in found] == ["platform.example.com"]
    assert resolve_targets(found, None, None, None) == ("platform.example.com", ("kits",), False)
    assert reader.registry_origin(None) == "IntegrationPlatform camel-k/camel-k status.build.registry"
    assert not any(q.path == "/apis/apps/v1/deployments" for q in kube.requests)  # not even read


def test_reader_reads_labelled_operator_deployments_when_no_platform_names_a_registry(kube):
    kube.add(o.integration_platform("bare", "camel-k", address=None),  # names no registry
             operator(REGISTRY_ADDRESS="operator.example.com", REGISTRY_ORGANIZATION="kits"),
             operator("look-alike", "default", labels={"app": "other"}, REGISTRY_ADDRESS="wrong.example.com"))
    reader = ClusterReader(kube.client(), backoff=0.001, page_size=1)
    found = reader.platform_registries()
    assert [(r.source, r.address) for r in found] == [
        (ObjectRef("Deployment", "camel-k-operator", "camel-k"), "operator.example.com")]
    assert resolve_targets(found, None, None, None) == ("operator.example.com", ("kits",), False)
    assert reader.registry_origin(None) == (
        "operator Deployment camel-k/camel-k-operator env REGISTRY_ADDRESS (operator id camel-k)")
    lists = [q for q in kube.requests if q.path == "/apis/apps/v1/deployments"]
    assert lists and all(q.query.get("labelSelector") == "app=camel-k,camel.apache.org/component=operator"
                         for q in lists)
    assert kube.writes() == []


def test_a_run_finds_the_registry_in_the_operator_env_and_logs_where(registry, kube, org):
    world = World(registry, kube, org)
    try:
        world.anchor()
        world.add(operator(REGISTRY_ADDRESS=registry.address, REGISTRY_ORGANIZATION=org, REGISTRY_INSECURE="true"))
        repo = world.repo(o.kit_name("operator env"))
        kept, gone = world.push(repo, "1"), world.push(repo, "2")
        world.add(o.deployment("orders", "shop", images=[world.image(repo, kept)]))
        code, events = world.run(DRY_RUN="false", PRUNE_KITS="false", REGISTRY_ADDRESS="", REGISTRY_ORGANIZATION="",
                                 REGISTRY_INSECURE="")
        assert code == 0, events[-3:]
        (started,) = events_named(events, "run_started")
        assert started["registry_from"] == (
            "operator Deployment camel-k/camel-k-operator env REGISTRY_ADDRESS (operator id camel-k)")
        assert started["organizations"] == [org] and started["registry_plain_http"] is True
        assert world.exists(repo, kept) and not world.exists(repo, gone)
        code, events = world.run()  # REGISTRY_ADDRESS set
        assert code == 0 and next(events_named(events, "run_started"))["registry_from"] == "REGISTRY_ADDRESS"
    finally:
        world.http.close()


def test_reader_a_profile_naming_the_registry_is_enough_and_the_operator_is_not_read(kube):
    kube.add(o.integration_profile("p", "team", address="profile.example.com", organization="team"),
             operator(env_from=[{"configMapRef": {"name": "camel-k-operator-configmap-configuration"}}]))
    reader = ClusterReader(kube.client(), backoff=0.001)
    found = reader.platform_registries()
    assert resolve_targets(found, None, None, None) == ("profile.example.com", ("team",), False)
    assert not any(q.path == "/apis/apps/v1/deployments" for q in kube.requests)
