"""The manifests for other clusters (REFERENCE_KUBECONFIG): manifests/reader, applied in each
other cluster, and the component manifests/components/reference-clusters, which hands the
collector the kubeconfig minted from the reader's token.

Rendered with `kubectl kustomize` and validated strictly offline, like tests/test_manifests.py,
whose helpers this reuses; the reader's ClusterRole is compared with kitgc.cluster.sources.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitgc import config, metrics
from kitgc.cluster.sources import READ_VERBS, SOURCES, WRITES
from kitgc.errors import ConfigError
from kitgc.kube.connect import reference_client, reference_contexts
from testbed.tools import tool
from tests.test_manifests import (
    CONFIGMAP,
    NAMESPACE,
    OVERLAYS,
    ROOT,
    STATE_CONFIGMAP,
    _newest_schema_version,
    _render_text,
    _validate,
    configmap_data,
    container,
    expected_cluster_rules,
    one,
    pod_spec,
    render,
    rule_set,
)

MANIFESTS = ROOT / "manifests"
READER = MANIFESTS / "reader"
COMPONENT = MANIFESTS / "components" / "reference-clusters"
READER_NAME = "camel-k-kit-gc-reader"
READER_TOKEN = "camel-k-kit-gc-reader-token"
KUBECONFIG_SECRET = "camel-k-kit-gc-reference-kubeconfig"
KUBECONFIG_PATH = "/etc/kitgc/reference/kubeconfig"
VERSIONS = ["1.29.0", "newest"]
GUIDE = ROOT / "docs" / "deploy.md"
CA = b"-----BEGIN CERTIFICATE-----\nMIIBstand-in\n-----END CERTIFICATE-----\n"


def _strictly_valid(objs: list[dict[str, Any]], text: str, version: str, path: Path) -> None:
    """Every object passes kubernetes-validate --strict, with no warning at all."""
    if version == "newest":
        version = _newest_schema_version()
    path.write_text(text)
    proc = _validate(path, version)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out and "WARN" not in out, out
    for obj in objs:
        ref = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        assert f"passed for resource {ref} against version" in out, f"{ref} not validated:\n{out}"


def _kustomization(directory: Path, **fields: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rel = {k: [os.path.relpath(p, directory) for p in v] for k, v in fields.items()}
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(rel))
    return directory


@pytest.fixture(scope="module")
def with_component(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The enforce overlay with the component, as an operator's own overlay would add it."""
    return _kustomization(tmp_path_factory.mktemp("ref") / "enforce-with-references",
                          resources=[OVERLAYS["enforce"]], components=[COMPONENT])


# --- manifests/reader ------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_reader_renders_and_passes_strict_schema_validation(version: str, tmp_path: Path) -> None:
    objs = render(READER)
    assert sorted(o["kind"] for o in objs) == ["ClusterRole", "ClusterRoleBinding", "Secret", "ServiceAccount"]
    _strictly_valid(objs, _render_text(READER), version, tmp_path / "reader.yaml")


def expected_reader_rules() -> set[tuple[str, str, str, str | None]]:
    """The reads of expected_cluster_rules (tests/test_manifests.py): the same derivation."""
    return {(s.group, s.plural, verb, None) for s in SOURCES for verb in READ_VERBS}


def test_reader_derivation_is_the_collectors_cluster_role_without_its_writes() -> None:
    writes = {(w.group, w.plural, v, None) for w in WRITES if not w.namespaced for v in w.verbs}
    assert expected_reader_rules() == expected_cluster_rules() - writes


def test_reader_cluster_role_grants_exactly_get_and_list_on_every_source_and_nothing_else() -> None:
    role = one(render(READER), "ClusterRole", READER_NAME)
    assert "aggregationRule" not in role
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"]), \
        "no resourceNames, no nonResourceURLs"
    granted = rule_set(role["rules"])
    expected = expected_reader_rules()
    assert granted - expected == set(), "the reader grants more than the collector reads"
    assert expected - granted == set(), "the reader misses a source the collector reads"
    assert {verb for _, _, verb, _ in granted} == set(READ_VERBS) == {"get", "list"}, "no write verb at all"
    assert not any("*" in part for rule in granted for part in rule if part), "no wildcards"


def test_reader_binds_its_role_to_its_service_account_and_has_a_token_for_it() -> None:
    objs = render(READER)
    sa = one(objs, "ServiceAccount", READER_NAME)
    assert sa["metadata"]["namespace"] == NAMESPACE
    assert sa["automountServiceAccountToken"] is False, "no pod runs as the reader"
    crb = one(objs, "ClusterRoleBinding", READER_NAME)
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": READER_NAME}
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": READER_NAME, "namespace": NAMESPACE}]
    token = one(objs, "Secret", READER_TOKEN)
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["namespace"] == NAMESPACE
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": READER_NAME}
    assert "data" not in token and "stringData" not in token, "Kubernetes fills in the token"
    # Nothing of the collector itself, and no Namespace (so `delete -k` cannot remove one).
    assert all(o["metadata"]["name"] in {READER_NAME, READER_TOKEN} for o in objs)


def test_reader_follows_the_namespace_of_an_overlay(tmp_path: Path) -> None:
    overlay = _kustomization(tmp_path / "prod-reader", resources=[READER])
    (overlay / "kustomization.yaml").write_text((overlay / "kustomization.yaml").read_text() + "namespace: tools\n")
    objs = render(overlay)
    assert one(objs, "ClusterRoleBinding")["subjects"][0]["namespace"] == "tools"
    assert one(objs, "Secret")["metadata"]["namespace"] == "tools"
    assert one(objs, "ServiceAccount")["metadata"]["namespace"] == "tools"


# --- manifests/components/reference-clusters -------------------------------------------------


def test_the_component_is_a_kustomize_component_and_no_overlay_was_added() -> None:
    doc = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("kustomize.config.k8s.io/v1alpha1", "Component")
    assert set(OVERLAYS) == {"dry-run", "enforce", "monitoring", "openshift", "sharded"}


@pytest.mark.parametrize("version", VERSIONS)
def test_enforce_with_the_component_renders_and_passes_strict_schema_validation(
    with_component: Path, version: str, tmp_path: Path
) -> None:
    _strictly_valid(render(with_component), _render_text(with_component), version, tmp_path / "with.yaml")


def test_the_component_mounts_the_kubeconfig_secret_read_only_and_points_the_variable_at_it(
    with_component: Path,
) -> None:
    objs = render(with_component)
    volumes = {v["name"]: v for v in pod_spec(objs)["volumes"]}
    mounts = {m["name"]: m for m in container(objs)["volumeMounts"]}
    [name] = set(volumes) - {v["name"] for v in pod_spec(render(OVERLAYS["enforce"]))["volumes"]}
    secret = volumes[name]["secret"]
    assert secret["secretName"] == KUBECONFIG_SECRET
    assert secret["items"] == [{"key": "kubeconfig", "path": "kubeconfig"}]
    assert secret["defaultMode"] & 0o7133 == 0, "readable by owner and group (fsGroup) only"
    assert secret["optional"] is True, "a missing Secret: exit 2 naming the variable, not ContainerCreating"
    mount = mounts[name]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount would not see an updated Secret"
    assert f"{mount['mountPath']}/{secret['items'][0]['path']}" == KUBECONFIG_PATH
    data = configmap_data(objs)
    assert data["REFERENCE_KUBECONFIG"] == KUBECONFIG_PATH
    # Through the ConfigMap, like every setting: not in env, where it would override it.
    assert "REFERENCE_KUBECONFIG" not in {e["name"] for e in container(objs)["env"]}
    assert container(objs)["envFrom"] == [{"configMapRef": {"name": CONFIGMAP}}]


def _without(obj: dict[str, Any], volume: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] != volume]
    c = pod["containers"][0]
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != volume]
    return obj


def test_the_component_changes_nothing_else_so_every_hardening_stays(with_component: Path) -> None:
    plain, objs = render(OVERLAYS["enforce"]), render(with_component)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, objs)) == sorted(map(key, plain)), "no object added or removed"
    for obj in objs:
        before = one(plain, obj["kind"], obj["metadata"]["name"])
        if obj["kind"] == "CronJob":
            assert _without(obj, "reference-kubeconfig") == before
        elif key(obj) == ("ConfigMap", CONFIGMAP):
            assert {**obj["data"], "REFERENCE_KUBECONFIG": ""} == before["data"]
            assert before["data"]["REFERENCE_KUBECONFIG"] == ""
        else:
            assert obj == before, key(obj)
    # And explicitly, the pod security settings.
    pod, c = pod_spec(objs), container(objs)
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                      "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False and sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert [m["name"] for m in c["volumeMounts"] if not m.get("readOnly")] == ["tmp"], "only /tmp writable"
    assert configmap_data(objs)["DRY_RUN"] == "false"


def test_uncommenting_the_line_in_the_enforce_overlay_enables_the_component(
    with_component: Path, tmp_path: Path
) -> None:
    text = (OVERLAYS["enforce"] / "kustomization.yaml").read_text()
    line = "# components: [../../components/reference-clusters]"
    assert text.count(line) == 1
    # A copy of manifests/ whose enforce overlay has the line uncommented.
    copy_root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy_root)
    (copy_root / "overlays" / "enforce" / "kustomization.yaml").write_text(text.replace(line, line[2:]))
    assert render(copy_root / "overlays" / "enforce") == render(with_component)


def test_the_rendered_configuration_is_accepted_by_the_collector(with_component: Path, tmp_path: Path) -> None:
    objs = render(with_component)
    env = configmap_data(objs)
    env["POD_NAMESPACE"] = NAMESPACE
    stand_in = tmp_path / ".dockerconfigjson"
    stand_in.write_text("{}")
    env["REGISTRY_AUTH_FILE"] = str(stand_in)
    # On this machine the mounted file does not exist: that, and only that, is the complaint.
    assert not os.path.exists(KUBECONFIG_PATH)
    with pytest.raises(ConfigError, match=f"REFERENCE_KUBECONFIG: file '{KUBECONFIG_PATH}' does not exist"):
        config.load(env)
    kubeconfig = _mint(tmp_path, {"prod": "https://prod.example.com:6443"})
    settings = config.load({**env, "REFERENCE_KUBECONFIG": str(kubeconfig)})
    assert settings.reference_kubeconfig == str(kubeconfig)
    assert settings.dry_run is False
    assert settings.state_configmap == (NAMESPACE, STATE_CONFIGMAP)


def test_uncommenting_the_line_in_the_openshift_overlay_enables_the_component_and_keeps_its_pod(
    tmp_path: Path,
) -> None:
    text = (OVERLAYS["openshift"] / "kustomization.yaml").read_text()
    line = "# components: [../../components/reference-clusters]"
    assert text.count(line) == 1
    copy_root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy_root)
    edited = copy_root / "overlays" / "openshift"
    (edited / "kustomization.yaml").write_text(text.replace(line, line[2:]))
    objs = render(edited)
    for version in VERSIONS:
        _strictly_valid(objs, _render_text(edited), version, tmp_path / f"openshift-{version}.yaml")
    plain = render(OVERLAYS["openshift"])
    assert _without(one(objs, "CronJob"), "reference-kubeconfig") == one(plain, "CronJob")
    assert sorted(v["name"] for v in pod_spec(objs)["volumes"]) == ["reference-kubeconfig", "tmp"]
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        assert field not in pod_spec(objs)["securityContext"] and field not in container(objs)["securityContext"]
    data = configmap_data(objs)
    assert data["REFERENCE_KUBECONFIG"] == KUBECONFIG_PATH and data["REGISTRY_KIND"] == "openshift"
    assert rule_set(one(objs, "ClusterRole")["rules"]) == rule_set(one(plain, "ClusterRole")["rules"])
    kubeconfig = _mint(tmp_path, {"prod": "https://prod.example.com:6443"})
    settings = config.load({**data, "POD_NAMESPACE": NAMESPACE, "REFERENCE_KUBECONFIG": str(kubeconfig)})
    assert settings.reference_kubeconfig == str(kubeconfig)
    assert settings.dry_run is True


# --- the guide's recipe ----------------------------------------------------------------------


def _recipe() -> str:
    guide = GUIDE.read_text()
    return guide.split("<!-- reference-kubeconfig -->", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]


def _mint(tmp_path: Path, clusters: dict[str, str], token: str = "reader-token-1") -> Path:
    """Run the guide's recipe once per cluster, as written, against stand-ins for the clusters.

    A fake `kubectl` answers the two reads of the reader's token Secret; everything else
    (config view, config set-*) is the real kubectl.
    """
    work = tmp_path / "mint"
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True)
    real = tool("kubectl")
    token_b64 = base64.b64encode(token.encode()).decode()
    ca_b64 = base64.b64encode(CA).decode()
    (bin_dir / "kubectl").write_text(f"""#!/bin/bash
case "$*" in
  *"get secret {READER_TOKEN}"*".data.token"*) echo -n {token_b64}; exit 0 ;;
  *"get secret {READER_TOKEN}"*".data.ca"*) echo -n {ca_b64}; exit 0 ;;
  *"get secret"*) echo "unexpected: $*" >&2; exit 1 ;;
esac
exec {real} "$@"
""")
    (bin_dir / "kubectl").chmod(0o755)
    # The operator's own kubeconfig, with one context per other cluster.
    own = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": f"{c}-cluster", "cluster": {"server": url}} for c, url in clusters.items()]
        + [{"name": "dev-cluster", "cluster": {"server": "https://dev.example.com:6443"}}],
        "users": [{"name": "me", "user": {"token": "admin"}}],
        "contexts": [{"name": c, "context": {"cluster": f"{c}-cluster", "user": "me"}} for c in [*clusters, "dev"]],
    }
    (work / "own-kubeconfig").write_text(yaml.safe_dump(own))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(work),
           "KUBECONFIG": str(work / "own-kubeconfig")}
    script = _recipe()
    for context in clusters:
        lines = script.replace("CTX=prod NAME=prod", f"CTX={context} NAME={context}")
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", lines], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    return work / "reference-kubeconfig"


def test_the_guides_recipe_mints_a_kubeconfig_the_collector_reads_with_one_context_per_cluster(
    tmp_path: Path,
) -> None:
    assert "CTX=prod NAME=prod" in _recipe()
    clusters = {"prod": "https://prod.example.com:6443", "staging": "https://10.0.0.7:6443"}
    path = _mint(tmp_path, clusters)
    assert reference_contexts(str(path)) == ["prod", "staging"]
    settings = config.load({"REFERENCE_KUBECONFIG": str(path)})
    assert settings.reference_kubeconfig == str(path)
    for context, server in clusters.items():
        client = reference_client(str(path), context)
        try:
            cfg = client.configuration
            assert cfg.host == server
            assert cfg.verify_ssl is True, "the server is verified against the reader Secret's CA"
            assert Path(cfg.ssl_ca_cert).read_bytes() == CA
            assert cfg.api_key["BearerToken"] == "Bearer reader-token-1"
        finally:
            client.close()
    # The file holds no path to a file the pod would not have: everything is embedded.
    doc = yaml.safe_load(path.read_text())
    assert all("certificate-authority" not in c["cluster"] for c in doc["clusters"])


def test_the_guide_documents_the_recipe_with_the_names_that_exist(with_component: Path) -> None:
    guide = GUIDE.read_text()
    section = guide.split("## Other clusters (REFERENCE_KUBECONFIG)\n", 1)[1].split("\n## ", 1)[0]
    for needle in ("kubectl --context prod apply -k manifests/reader", READER_NAME, READER_TOKEN,
                   "kubernetes.io/service-account-token", KUBECONFIG_SECRET, "--from-file=kubeconfig=",
                   "manifests/components/reference-clusters", KUBECONFIG_PATH, "reference_cluster_read",
                   "kitgc_clusters_read", "clusters_read", "exit 3", "set-cluster", "set-credentials",
                   "set-context"):
        assert needle in section, needle
    assert "kitgc_clusters_read" in metrics.GAUGES
    everywhere = (ROOT / "gc" / "kitgc" / "cluster" / "everywhere.py").read_text()
    assert 'log.info("reference_cluster_read"' in everywhere
    readme = (ROOT / "README.md").read_text()
    deploy = readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    assert "manifests/reader" in deploy and "manifests/components/reference-clusters" in deploy
    assert "(docs/deploy.md#other-clusters-reference_kubeconfig)" in deploy
