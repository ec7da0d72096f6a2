"""Every reference source is read completely, every extraction rule holds, every fault aborts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from kitgc.cluster import sources as S
from kitgc.cluster.extract import extract
from kitgc.cluster.reader import ClusterReader
from kitgc.errors import ConfigError, KubernetesError, SourceUnavailable
from kitgc.imageref import digest_only, parse
from kitgc.kube.connect import make_api_client
from kitgc.model import Kit, KitUse, ObjectRef
from testbed import objects as o
from testbed import openshift

NOW = datetime(2025, 6, 1, tzinfo=UTC)
REG = "registry.example.com:5000"
D1, D2, D3 = o.digest(1), o.digest(2), o.digest(3)
KIT = o.kit_name(1)
KIT_IMG = f"{REG}/camel-k/camel-k-{KIT}@{D1}"
ANNOTATION = "trait.camel.apache.org/container.image"


def refs(source, obj):
    found = extract(source, obj, NOW)
    assert not found.unparsable, found.unparsable
    return {(r.field, str(r.image)) for r in found.references}


# (source, object, {(field, normalised image)}) -- one row per extraction rule
CASES = [
    pytest.param(S.PODS, o.pod("p", images={"app": "nginx:1.25"}, init={"setup": "busybox"},
                                ephemeral={"debug": "alpine"}),
                 {("spec.containers[app].image", "docker.io/library/nginx:1.25"),
                  ("spec.initContainers[setup].image", "docker.io/library/busybox"),
                  ("spec.ephemeralContainers[debug].image", "docker.io/library/alpine")},
                 id="pod-containers-init-ephemeral"),
    pytest.param(S.PODS, o.pod("p", images={"app": f"{REG}/camel-k/camel-k-{KIT}:12345"},
                                image_ids={"app": f"docker-pullable://{KIT_IMG}"}),
                 {("spec.containers[app].image", f"{REG}/camel-k/camel-k-{KIT}:12345"),
                  ("status.containerStatuses[app].image", f"{REG}/camel-k/camel-k-{KIT}:12345"),
                  ("status.containerStatuses[app].imageID", KIT_IMG)},
                 id="pod-imageID-docker-pullable"),
    pytest.param(S.PODS, o.pod("p", images={"app": "nginx"}, init={"i": "busybox"},
                                image_ids={"app": f"docker://{D2}", "i": D3}, status_images={"app": D2}),
                 {("spec.containers[app].image", "docker.io/library/nginx"),
                  ("spec.initContainers[i].image", "docker.io/library/busybox"),
                  ("status.containerStatuses[app].imageID", str(digest_only(D2))),
                  ("status.containerStatuses[app].image", str(digest_only(D2))),
                  ("status.initContainerStatuses[i].imageID", str(digest_only(D3))),
                  ("status.initContainerStatuses[i].image", "docker.io/library/busybox")},
                 id="pod-bare-sha256-image-ids"),
    pytest.param(S.PODS, o.pod("p", images={"app": "nginx"}, image_ids={"app": ""}),
                 {("spec.containers[app].image", "docker.io/library/nginx"),
                  ("status.containerStatuses[app].image", "docker.io/library/nginx")},
                 id="pod-empty-imageID-skipped"),
    *[pytest.param(src, build(f"w-{src.plural}", images={"app": "quay.io/a/b:1"}, init={"i": "quay.io/a/init:1"}),
                   {("spec.template.spec.containers[app].image", "quay.io/a/b:1"),
                    ("spec.template.spec.initContainers[i].image", "quay.io/a/init:1")},
                   id=src.plural)
      for src, build in [(S.DEPLOYMENTS, o.deployment), (S.REPLICASETS, o.replicaset),
                         (S.STATEFULSETS, o.statefulset), (S.DAEMONSETS, o.daemonset), (S.JOBS, o.job),
                         (S.REPLICATION_CONTROLLERS, o.replication_controller)]],
    pytest.param(S.CRONJOBS, o.cronjob("c", images={"app": KIT_IMG}),
                 {("spec.jobTemplate.spec.template.spec.containers[app].image", KIT_IMG)}, id="cronjob"),
    pytest.param(S.KNATIVE_SERVICES, o.knative_service("k", image=KIT_IMG),
                 {("spec.template.spec.containers[integration].image", KIT_IMG)}, id="knative-service"),
    pytest.param(S.KNATIVE_CONFIGURATIONS, o.knative_configuration("k", image=KIT_IMG),
                 {("spec.template.spec.containers[integration].image", KIT_IMG)}, id="knative-configuration"),
    pytest.param(S.KNATIVE_REVISIONS,
                 o.knative_revision("r", image=f"{REG}/x/y:latest", image_digest=f"{REG}/x/y@{D2}"),
                 {("spec.containers[integration].image", f"{REG}/x/y:latest"),
                  ("status.containerStatuses[integration].imageDigest", f"{REG}/x/y@{D2}")},
                 id="knative-revision-imageDigest"),
    pytest.param(S.INTEGRATIONS, o.integration("i", kit=KIT, image=KIT_IMG, trait_image=f"{REG}/own/img:1"),
                 {("status.image", KIT_IMG), ("spec.traits.container.image", f"{REG}/own/img:1")},
                 id="integration-status-image-and-container-trait"),
    pytest.param(S.INTEGRATIONS, {**o.integration("i"), "spec": {"traits": {"container": {
                     "configuration": {"image": f"{REG}/old/trait:1"}}}}},
                 {("spec.traits.container.configuration.image", f"{REG}/old/trait:1")},
                 id="integration-old-container-trait-configuration"),
    pytest.param(S.INTEGRATIONS, {**o.integration("i"), "metadata": {"name": "i",
                                                                     "annotations": {ANNOTATION: KIT_IMG}}},
                 {(f"metadata.annotations[{ANNOTATION}]", KIT_IMG)}, id="integration-trait-annotation"),
    pytest.param(S.PIPES, o.pipe("p", annotation=KIT_IMG), {(f"metadata.annotations[{ANNOTATION}]", KIT_IMG)},
                 id="pipe-trait-annotation"),
    pytest.param(S.PIPES, o.pipe("p", annotation=f'["{KIT_IMG}", {REG}/other:1]'),
                 {(f"metadata.annotations[{ANNOTATION}][0]", KIT_IMG),
                  (f"metadata.annotations[{ANNOTATION}][1]", f"{REG}/other:1")}, id="pipe-trait-annotation-array"),
    pytest.param(S.PIPES, o.pipe("p", trait_image=KIT_IMG), {("spec.traits.container.image", KIT_IMG)},
                 id="pipe-spec-traits"),
    pytest.param(S.PIPES, o.pipe("p", integration_trait_image=KIT_IMG),
                 {("spec.integration.traits.container.image", KIT_IMG)}, id="pipe-spec-integration-traits"),
    pytest.param(S.PIPES, {**o.pipe("p"), "spec": {"integration": {"traits": {"container": {
                     "configuration": {"image": KIT_IMG}}}}}},
                 {("spec.integration.traits.container.configuration.image", KIT_IMG)},
                 id="pipe-old-container-trait-configuration"),
    pytest.param(S.PIPES, o.pipe("p"), set(), id="pipe-without-container-image"),
    pytest.param(S.KAMELET_BINDINGS, o.kamelet_binding("kb", annotation=KIT_IMG, integration_trait_image=f"{REG}/x:1"),
                 {(f"metadata.annotations[{ANNOTATION}]", KIT_IMG),
                  ("spec.integration.traits.container.image", f"{REG}/x:1")}, id="kamelet-binding"),
    pytest.param(S.BUILDS, o.build("b", phase="Running", image=f"{REG}/camel-k/camel-k-{KIT}:1"),
                 {("spec.tasks[0].builder.baseImage", "docker.io/library/eclipse-temurin:17"),
                  ("spec.tasks[1].package.baseImage", "docker.io/library/eclipse-temurin:17"),
                  ("spec.tasks[2].jib.baseImage", "docker.io/library/eclipse-temurin:17"),
                  ("spec.tasks[2].jib.image", f"{REG}/camel-k/camel-k-{KIT}:1")},
                 id="build-running-every-image-key"),
    pytest.param(S.BUILDS, o.build("b", phase="Scheduling", status_image=KIT_IMG, base_image=f"{REG}/base@{D2}"),
                 {("spec.tasks[0].builder.baseImage", f"{REG}/base@{D2}"),
                  ("spec.tasks[1].package.baseImage", f"{REG}/base@{D2}"),
                  ("status.image", KIT_IMG), ("status.baseImage", f"{REG}/base@{D2}")},
                 id="build-status-images"),
    pytest.param(S.BUILDS, o.build("b", phase="SomethingNew", base_image="base:1"),
                 {("spec.tasks[0].builder.baseImage", "docker.io/library/base:1"),
                  ("spec.tasks[1].package.baseImage", "docker.io/library/base:1")},
                 id="build-unknown-phase-is-unfinished"),
    *[pytest.param(S.BUILDS, o.build("b", phase=phase, image=KIT_IMG, status_image=KIT_IMG), set(),
                   id=f"build-{phase}-ignored") for phase in ("Succeeded", "Failed", "Error", "Interrupted")],
    pytest.param(S.INTEGRATION_PLATFORMS, {**o.integration_platform(address=REG),
                                           "spec": {"build": {"baseImage": "eclipse-temurin:21"}}},
                 {("spec.build.baseImage", "docker.io/library/eclipse-temurin:21"),
                  ("status.build.baseImage", "docker.io/library/eclipse-temurin:17")},
                 id="platform-base-images"),
    pytest.param(S.INTEGRATION_PROFILES, o.integration_profile("p", base_image=f"{REG}/jdk@{D3}"),
                 {("spec.build.baseImage", f"{REG}/jdk@{D3}")}, id="profile-base-image"),
]


@pytest.mark.parametrize(("source", "obj", "expected"), CASES)
def test_extraction_rule(source, obj, expected):
    assert refs(source, obj) == expected


def test_references_name_the_object_they_come_from():
    (ref,) = extract(S.CRONJOBS, o.cronjob("nightly", "team-a", images={"app": KIT_IMG}), NOW).references
    assert ref.source == ObjectRef("CronJob", "nightly", "team-a")
    assert ref.image == parse(KIT_IMG)
    (kn,) = extract(S.KNATIVE_SERVICES, o.knative_service("svc", image=KIT_IMG), NOW).references
    assert kn.source.kind == "Service.serving.knative.dev"


def test_status_digest_of_integrations_and_kits_is_never_an_image():
    integ = o.integration("i", kit=KIT)
    kit = o.integration_kit(KIT)
    assert extract(S.INTEGRATIONS, integ, NOW).references == []
    found = extract(S.INTEGRATION_KITS, kit, NOW)
    assert found.references == [] and found.kits[0].image is None


@pytest.mark.parametrize(
    ("source", "obj", "field"),
    [
        (S.PODS, o.pod("p", images={"app": "Not A Reference"}), "spec.containers[app].image"),
        (S.DEPLOYMENTS, o.deployment("d", images={"app": "repo@sha256:short"}),
         "spec.template.spec.containers[app].image"),
        (S.PODS, o.pod("p", images={"app": 42}), "spec.containers[app].image"),
        (S.INTEGRATIONS, o.integration("i", image="quay.io/Upper/case:1"), "status.image"),
        (S.INTEGRATION_KITS, o.integration_kit(KIT, image="bad image"), "status.image"),
        (S.BUILDS, {**o.build("b"), "status": {"phase": "Running", "image": ["not", 1]}}, "status.image[1]"),
    ],
)
def test_unparsable_image_is_reported_not_skipped(source, obj, field):
    found = extract(source, obj, NOW)
    assert [u.field for u in found.unparsable] == [field]
    assert found.unparsable[0].error


def test_integration_kits_become_kits_not_references():
    obj = o.integration_kit(KIT, "camel-k", kit_type="user", phase="Build Running", created="2024-03-04T05:06:07Z",
                            image=KIT_IMG, base_image=f"{REG}/camel-k/camel-k-{o.kit_name(0)}@{D2}",
                            root_image="eclipse-temurin:17", spec_image=f"{REG}/ext/img:1")
    found = extract(S.INTEGRATION_KITS, obj, NOW)
    assert found.references == []
    assert found.kits == [Kit(namespace="camel-k", name=KIT, kit_type="user", phase="Build Running",
                              created=datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC), image=parse(KIT_IMG),
                              spec_image=parse(f"{REG}/ext/img:1"),
                              base_image=parse(f"{REG}/camel-k/camel-k-{o.kit_name(0)}@{D2}"),
                              root_image=parse("eclipse-temurin:17"))]


def test_kit_without_readable_creation_time_counts_as_new():
    obj = o.integration_kit(KIT, created="")
    del obj["metadata"]["labels"]
    (kit,) = extract(S.INTEGRATION_KITS, obj, NOW).kits
    assert kit.created == NOW and kit.kit_type == "" and kit.phase == "Ready"


def test_integrations_use_kits_from_status_spec_and_old_spec_kit():
    user = ObjectRef("Integration", "i", "apps")
    found = extract(S.INTEGRATIONS, o.integration("i", "apps", kit=KIT, kit_namespace="camel-k"), NOW)
    assert found.kit_uses == [KitUse(user, "camel-k", KIT)]
    pinned = o.integration("i", "apps", spec_kit="kit-pinned")
    assert extract(S.INTEGRATIONS, pinned, NOW).kit_uses == [KitUse(user, "apps", "kit-pinned")]
    defaulted = o.integration("i", "apps")
    defaulted["status"]["integrationKit"] = {"name": "kit-x"}
    defaulted["spec"]["kit"] = "kit-old"
    assert extract(S.INTEGRATIONS, defaulted, NOW).kit_uses == [KitUse(user, "apps", "kit-x"),
                                                                  KitUse(user, "apps", "kit-old")]


# --- the reader against the emulator ----------------------------------------------------


def one_of_each(n: int = 3) -> list[dict]:
    """``n`` objects of every source kind, with images that tell where they came from."""
    out: list[dict] = []
    for i in range(n):
        img = f"{REG}/refs/img-{i}"
        out += [o.pod(f"pod-{i}", images=[f"{img}:pod"]), o.deployment(f"d-{i}", images=[f"{img}:deployment"]),
                o.replicaset(f"rs-{i}", images=[f"{img}:replicaset"]),
                o.statefulset(f"ss-{i}", images=[f"{img}:statefulset"]),
                o.daemonset(f"ds-{i}", images=[f"{img}:daemonset"]), o.job(f"j-{i}", images=[f"{img}:job"]),
                o.cronjob(f"cj-{i}", images=[f"{img}:cronjob"]),
                o.replication_controller(f"rc-{i}", images=[f"{img}:replicationcontroller"]),
                o.knative_service(f"ks-{i}", image=f"{img}:knservice"),
                o.knative_configuration(f"kc-{i}", image=f"{img}:knconfiguration"),
                o.pipe(f"pipe-{i}", trait_image=f"{img}:pipe"),
                o.kamelet_binding(f"kb-{i}", annotation=f"{img}:kameletbinding"),
                o.knative_revision(f"kr-{i}", image=f"{img}:knrevision"),
                o.integration(f"it-{i}", kit=o.kit_name(i), image=f"{img}:integration"),
                o.integration_kit(o.kit_name(i), image=f"{REG}/camel-k/camel-k-{o.kit_name(i)}@{o.digest(i)}"),
                o.integration_platform(f"ip-{i}", address=REG, base_image=f"{img}:platform"),
                o.integration_profile(f"pr-{i}", base_image=f"{img}:profile"),
                o.build(f"b-{i}", base_image=f"{img}:build"),
                openshift.deployment_config(f"dc-{i}", images=[f"{img}:deploymentconfig"]),
                openshift.build_config(f"bc-{i}", base=("DockerImage", f"{img}:buildconfig")),
                openshift.image_stream(f"is-{i}", spec_tags={"t": ("DockerImage", f"{img}:imagestream")})]
    return out


def serve_openshift(kube, on: bool = True) -> None:
    for group in openshift.GROUPS:
        kube.serve(group, on=on)


def reader(kube, **kw) -> ClusterReader:
    kw = {"page_size": 2, "backoff": 0.001, "timeout": 2.0, **kw}
    return ClusterReader(kube.client(), **kw)


def test_snapshot_reads_every_source_completely_across_pages(kube):
    kube.serve("serving.knative.dev")
    kube.serve("camel.apache.org", "kameletbindings")
    serve_openshift(kube)
    kube.add(*one_of_each(3))
    r = reader(kube)
    snap = r.snapshot()
    tags = {ref.image.tag for ref in snap.references}
    assert tags == {"pod", "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob", "knservice",
                    "knrevision", "integration", "platform", "profile", "build", "replicationcontroller",
                    "knconfiguration", "pipe", "kameletbinding", "deploymentconfig", "buildconfig", "imagestream"}
    assert sorted(r.stats["objects"]) == sorted(str(s) for s in S.SOURCES) and r.stats["skipped"] == []
    assert snap.objects_read == 3 * len(S.SOURCES) and snap.integrations == 3
    assert sorted(k.name for k in snap.kits) == sorted(o.kit_name(i) for i in range(3))
    assert len(snap.kit_uses) == 3 and snap.unparsable == ()
    assert r.stats["pages"] == 2 * len(S.SOURCES)
    assert r.stats["objects"]["v1 pods"] == 3
    assert kube.writes() == []


def test_snapshot_is_deterministic(kube):
    kube.serve("camel.apache.org", "kameletbindings")
    kube.add(*one_of_each(4))
    first, second = reader(kube, workers=4).snapshot(), reader(kube, workers=1).snapshot()
    assert first == second


def test_a_snapshot_leaves_no_parsed_image_strings_behind(kube):
    """The parse cache serves one read; the snapshot holds what was kept (kitgc.cluster.found)."""
    from kitgc.cluster.found import _parse

    kube.add(*one_of_each(2))
    snap = reader(kube).snapshot()
    assert snap.references and _parse.cache_info().currsize == 0


def test_absent_knative_is_skipped_and_logged(kube):
    kube.add(*[x for x in one_of_each(1) if "knative" not in x["apiVersion"] and x["kind"] != "KameletBinding"])
    r = reader(kube)
    with capture_logs() as logs:
        snap = r.snapshot()
    assert "serving.knative.dev/v1 services" not in r.stats["objects"]
    assert snap.objects_read == sum(r.stats["objects"].values())
    assert r.stats["skipped"] == ["serving.knative.dev/v1 services", "serving.knative.dev/v1 configurations",
                                  "serving.knative.dev/v1 revisions", "camel.apache.org/v1alpha1 kameletbindings",
                                  "apps.openshift.io/v1 deploymentconfigs", "build.openshift.io/v1 buildconfigs",
                                  "image.openshift.io/v1 imagestreams"]
    assert {(e["event"], e["log_level"]) for e in logs} >= {("optional_api_absent", "info")}
    assert not any(q.path.startswith("/apis/serving.knative.dev/v1/") for q in kube.requests)


def test_absent_integration_profiles_crd_is_skipped(kube):
    kube.serve("camel.apache.org", "integrationprofiles", on=False)
    r = reader(kube)
    r.snapshot()
    assert "camel.apache.org/v1 integrationprofiles" not in r.stats["objects"]
    assert "camel.apache.org/v1 integrationprofiles" in r.stats["skipped"]
    assert "camel.apache.org/v1 integrations" in r.stats["objects"]


def test_absent_pipes_and_kamelet_bindings_are_skipped(kube):
    kube.serve("camel.apache.org", "pipes", on=False)  # Camel K 1.x has KameletBindings
    kube.serve("camel.apache.org", "kameletbindings")
    kube.add(o.kamelet_binding("kb", annotation="quay.io/a/b:1"))
    r = reader(kube)
    snap = r.snapshot()
    assert "camel.apache.org/v1 pipes" in r.stats["skipped"]
    assert r.stats["objects"]["camel.apache.org/v1alpha1 kameletbindings"] == 1
    assert {(ref.source.kind, ref.image.tag) for ref in snap.references} == {("KameletBinding", "1")}
    kube.serve("camel.apache.org", "kameletbindings", on=False)  # Camel K 2.6 and later
    r = reader(kube)
    r.snapshot()
    assert "camel.apache.org/v1alpha1 kameletbindings" in r.stats["skipped"]


def test_openshift_apis_are_read_where_served(kube):
    kube.serve(openshift.IMAGE)
    kube.serve(openshift.OPENSHIFT_BUILD)  # OpenShift 4.14+ without the DeploymentConfig capability
    kube.add(openshift.image_stream("java", "shop", spec_tags={"17": ("DockerImage", "quay.io/a/java:17")}),
             openshift.build_config("b", "shop", output=("ImageStreamTag", "out:1")),
             openshift.deployment_config("dc", "shop", images=["quay.io/a/dc:1"]))
    r = reader(kube)
    snap = r.snapshot()
    assert "apps.openshift.io/v1 deploymentconfigs" in r.stats["skipped"]
    assert r.stats["objects"]["image.openshift.io/v1 imagestreams"] == 1
    assert r.stats["objects"]["build.openshift.io/v1 buildconfigs"] == 1
    assert {(ref.source.kind, str(ref.image)) for ref in snap.references} == {
        ("ImageStream.image.openshift.io", "quay.io/a/java:17"),
        ("BuildConfig.build.openshift.io", f"{openshift.REGISTRY_HOST}/shop/out:1")}


def test_bare_names_resolve_through_local_image_streams_in_the_snapshot(kube):
    serve_openshift(kube)
    stream = "camel-k-" + o.kit_name(1)
    kube.add(openshift.image_stream(stream, "shop"), openshift.image_stream("web", "shop", lookup_local=False),
             o.pod("p", "shop", images={"app": f"{stream}:7", "web": "web:1"}),
             o.pod("q", "elsewhere", images={"app": f"{stream}:7"}),
             openshift.image_stream(stream, "other"), o.pod("r", "other", images={"app": f"{stream}:7"}))
    # Folded (one example per image as written), each namespace's bare name still resolves
    # through its own namespace's stream: bare names are resolved from all of them, never folded.
    folded = reader(kube).snapshot()
    resolved = {(ref.source.name, str(ref.image)) for ref in folded.references if "lookupPolicy.local" in ref.field}
    assert resolved == {("p", f"{openshift.REGISTRY_HOST}/shop/{stream}:7"),
                        ("r", f"{openshift.REGISTRY_HOST}/other/{stream}:7")}
    snap = reader(kube, fold=False).snapshot()
    assert sorted((ref.source.name, str(ref.image), ref.field) for ref in snap.references
                  if ref.source.name != "r") == sorted([
        ("p", f"docker.io/library/{stream}:7", "spec.containers[app].image"),
        ("p", f"{openshift.REGISTRY_HOST}/shop/{stream}:7",
         f"spec.containers[app].image (ImageStream {stream}, lookupPolicy.local)"),
        ("p", "docker.io/library/web:1", "spec.containers[web].image"),
        ("q", f"docker.io/library/{stream}:7", "spec.containers[app].image")])


@pytest.mark.parametrize("source", [S.REPLICATION_CONTROLLERS, S.KNATIVE_CONFIGURATIONS, S.PIPES, S.KAMELET_BINDINGS,
                                    S.DEPLOYMENT_CONFIGS, S.BUILD_CONFIGS, S.IMAGE_STREAMS], ids=str)
def test_a_new_source_that_is_served_but_forbidden_aborts(kube, source):
    kube.serve("serving.knative.dev")
    kube.serve("camel.apache.org", "kameletbindings")
    serve_openshift(kube)
    kube.inject("GET", source.path, status=403)
    with pytest.raises(SourceUnavailable, match=rf"^cannot read {source}: 403 Forbidden"):
        reader(kube).snapshot()


def test_list_raw_yields_raw_json_across_pages(kube):
    kube.add(*(o.pod(f"p{i}", images=["x"]) for i in range(5)))
    items = list(reader(kube).list_raw(S.PODS))
    assert [i["metadata"]["name"] for i in items] == [f"p{i}" for i in range(5)]
    assert [q.query.get("limit") for q in kube.requests] == ["2", "2", "2"]


def test_a_page_body_is_let_go_before_its_items_are_handed_over(kube):
    """Two bodies per reading thread (the page being extracted and the next one downloading)
    were a cluster read's largest transient; while the caller holds a page's items, no
    answer of the API server is alive."""
    import gc

    from kitgc.kube.http import Response

    kube.add(*(o.pod(f"p{i}", images=["x"]) for i in range(5)))
    alive = []
    for _item in reader(kube).list_raw(S.PODS):
        gc.collect()
        alive.append(sum(1 for obj in gc.get_objects() if isinstance(obj, Response)))
    assert alive == [0] * 5


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda k: k.inject("GET", "/apis/apps/v1/deployments", status=403),
         'cannot read apps/v1 deployments: 403 Forbidden: deployments.apps is forbidden: User '
         '"system:serviceaccount:kitgc:camel-k-kit-gc" cannot list resource "deployments"'),
        (lambda k: k.serve("camel.apache.org", on=False),
         "cannot read camel.apache.org/v1 integrations: 404 Not Found: the server could not find the requested "
         "resource; are Camel K's CRDs installed?"),
        (lambda k: k.inject("GET", "/api/v1/pods", body=b"<html>502 Bad Gateway</html>"),
         "cannot read v1 pods: the API server answered 200 with a body that is not JSON: '<html>502 Bad Gateway"),
        (lambda k: k.inject("GET", "/apis/batch/v1/jobs", body=b'{"kind": "Status"}'),
         "cannot read batch/v1 jobs: the API server answered 200 with something that is not a list"),
        (lambda k: k.inject("GET", "/apis/batch/v1/cronjobs", status=500),
         "cannot read batch/v1 cronjobs: 500 Internal Server Error: injected 500"),
        (lambda k: k.inject("GET", "/apis/camel.apache.org/v1/builds", close=True),
         "cannot read camel.apache.org/v1 builds: no answer from the API server: ProtocolError"),
        (lambda k: k.inject("GET", "/apis/serving.knative.dev/v1", status=403),
         "cannot discover serving.knative.dev/v1 (for serving.knative.dev/v1 services): 403 Forbidden"),
        (lambda k: k.inject("GET", "/apis/apps/v1/replicasets", status=410, only_continue=True),
         "cannot read apps/v1 replicasets: 410 Gone: The provided continue parameter is too old"),
    ],
    ids=["403", "camel-crds-absent", "garbage-body", "not-a-list", "500-persists", "connection-drops",
         "optional-discovery-forbidden", "410-forever"],
)
def test_unreadable_source_aborts_naming_it_in_one_line(kube, setup, message):
    kube.add(*one_of_each(3))
    setup(kube)
    with pytest.raises(SourceUnavailable) as err:
        reader(kube, retries=2).snapshot()
    text = str(err.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert kube.writes() == []


def test_a_read_timeout_is_retried_then_aborts(kube):
    slow = kube.inject("GET", "/api/v1/pods", delay=0.5)
    with pytest.raises(SourceUnavailable, match=r"cannot read v1 pods: no answer from the API server: .*timed out"):
        reader(kube, retries=1, timeout=0.1, sources=(S.PODS,)).snapshot()
    assert slow.hits == 2


@pytest.mark.parametrize(
    "fault",
    [{"status": 500, "times": 2}, {"status": 503, "times": 3}, {"status": 429, "retry_after": 0, "times": 2},
     {"close": True, "times": 2}],
    ids=["500-burst", "503-burst", "429-retry-after", "connection-reset"],
)
def test_transient_failures_are_retried_and_recover(kube, fault):
    kube.add(*(o.pod(f"p{i}", images=[f"img:{i}"]) for i in range(5)))
    kube.inject("GET", "/api/v1/pods", **fault)
    r = reader(kube, sources=(S.PODS,))
    snap = r.snapshot()
    assert {ref.image.tag for ref in snap.references} == {str(i) for i in range(5)}
    assert r.stats["retries"] == fault["times"]


def test_expired_continue_token_relists_from_the_start(kube):
    kube.add(*(o.integration_kit(f"kit-{i}") for i in range(5)))
    kube.inject("GET", "/apis/camel.apache.org/v1/integrationkits", status=410, only_continue=True, times=2)
    r = reader(kube, sources=(S.INTEGRATION_KITS,))
    snap = r.snapshot()
    assert [k.name for k in snap.kits] == [f"kit-{i}" for i in range(5)]
    assert snap.objects_read == 5 and r.stats["relists"] == 2


def test_relist_reflects_the_newer_list_only(kube):
    kube.add(*(o.pod(f"p{i}", images=[f"img:{i}"]) for i in range(4)))
    pods = kube.api.store.resource("", "v1", "pods")

    def expire_after_first_page(method, path, query):
        if query.get("continue") and kube.api.store.objects(pods)[0]["metadata"]["name"] == "p0":
            kube.api.store.delete(pods, "default", "p0")
            kube.api.expire_continue_tokens()

    kube.api.on_request(expire_after_first_page)
    snap = reader(kube, sources=(S.PODS,)).snapshot()
    assert sorted(ref.image.tag for ref in snap.references) == ["1", "2", "3"]
    assert snap.objects_read == 3


def test_unparsable_references_reach_the_snapshot(kube):
    kube.add(o.pod("p", images={"app": "Bad Image"}))
    snap = reader(kube, sources=(S.PODS,)).snapshot()
    assert [(u.raw, u.source.name) for u in snap.unparsable] == [("Bad Image", "p")]


def test_delete_kit_deletes_and_reports_already_gone(kube):
    kube.add(o.integration_kit("kit-a", "camel-k"))
    r = reader(kube)
    assert r.delete_kit("camel-k", "kit-a") is True
    assert r.delete_kit("camel-k", "kit-a") is False
    assert [(w.method, w.path) for w in kube.writes()] == [
        ("DELETE", "/apis/camel.apache.org/v1/namespaces/camel-k/integrationkits/kit-a")] * 2


def test_delete_kit_failure_raises_kubernetes_error(kube):
    kube.add(o.integration_kit("kit-a", "camel-k"))
    kube.inject("DELETE", ".*/integrationkits/kit-a", status=403)
    with pytest.raises(KubernetesError, match="cannot delete IntegrationKit camel-k/kit-a: 403 Forbidden") as err:
        reader(kube).delete_kit("camel-k", "kit-a")
    assert err.value.status == 403


# --- connecting -------------------------------------------------------------------------


def test_client_follows_kubeconfig_from_the_environment(kube):
    client = make_api_client()  # KUBECONFIG is set by the fixture
    try:
        r = ClusterReader(client, sources=(S.PODS,))
        r.snapshot()
        assert list(r.stats["objects"]) == ["v1 pods"]
    finally:
        client.close()
    assert kube.requests[-1].path == "/api/v1/pods"


def test_missing_kubeconfig_is_a_config_error_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot load Kubernetes configuration from KUBECONFIG=.*nope") as err:
        make_api_client({"KUBECONFIG": str(tmp_path / "nope")})
    assert "\n" not in str(err.value)


def test_in_cluster_without_a_service_account_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot load the in-cluster Kubernetes configuration"):
        make_api_client({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"})


def test_a_wrong_token_aborts_naming_the_source(kube):
    kube.api.token = "rotated"
    with pytest.raises(SourceUnavailable, match="cannot read v1 pods: 401 Unauthorized"):
        reader(kube, sources=(S.PODS,)).snapshot()
