"""Registry address and organizations: discovered from platforms, explicit settings win."""

from __future__ import annotations

import pytest

from kitgc.cluster.discovery import PlatformRegistry, from_platform, from_profile, resolve_targets
from kitgc.cluster.reader import ClusterReader
from kitgc.errors import ConfigError
from kitgc.model import ObjectRef
from testbed import objects as o


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
