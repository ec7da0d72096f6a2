"""References on OpenShift: DeploymentConfigs, BuildConfigs, ImageStreams, the triggers annotation,
and bare names resolved through ImageStreams with ``lookupPolicy.local``.

Objects are built by hand here, field by field as openshift/api names them, so that each rule
is pinned to the field it reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kitgc.cluster import sources as S
from kitgc.cluster.extract import extract
from kitgc.cluster.found import Found
from kitgc.cluster.local_lookup import resolved, with_local_lookups
from kitgc.cluster.openshift_refs import INTEGRATED_REGISTRY, TRIGGERS_ANNOTATION
from kitgc.imageref import parse
from kitgc.model import ObjectRef, Reference
from testbed import objects as o

NOW = datetime(2025, 6, 1, tzinfo=UTC)
REG = INTEGRATED_REGISTRY
D1, D2 = o.digest(1), o.digest(2)
KIT = "camel-k-" + o.kit_name(1)
TRIGGERS = f"metadata.annotations[{TRIGGERS_ANNOTATION}]"


def ist(name: str, namespace: str | None = None) -> dict[str, str]:
    return {"kind": "ImageStreamTag", "name": name, **({"namespace": namespace} if namespace else {})}


def isi(name: str) -> dict[str, str]:
    return {"kind": "ImageStreamImage", "name": name}


def docker(name: str) -> dict[str, str]:
    return {"kind": "DockerImage", "name": name}


def dc(triggers: list[dict[str, Any]], images: Any = None, ns: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfig",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 1, "triggers": triggers,
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": o.pod_spec(images or {})}}}


def bc(spec: dict[str, Any], ns: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "build.openshift.io/v1", "kind": "BuildConfig", "metadata": {"name": KIT, "namespace": ns},
            "spec": spec}


def stream(name: str, tags: list[dict[str, Any]] | None = None, local: Any = True, ns: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": name, "namespace": ns},
            "spec": {"lookupPolicy": {"local": local}, **({"tags": tags} if tags is not None else {})},
            "status": {"dockerImageRepository": f"{REG}/{ns}/{name}"}}


def annotated(obj: dict[str, Any], value: Any) -> dict[str, Any]:
    obj["metadata"]["annotations"] = {TRIGGERS_ANNOTATION: value, "other": "x"}
    return obj


def trigger(from_: Any, path: str = 'spec.template.spec.containers[?(@.name=="app")].image') -> dict[str, Any]:
    return {"from": from_, "fieldPath": path}


def refs(source: S.Source, obj: dict[str, Any]) -> set[tuple[str, str]]:
    found = extract(source, obj, NOW)
    assert not found.unparsable, found.unparsable
    return {(r.field, str(r.image)) for r in found.references}


# (source, object, {(field, normalised image)}): one row per rule
CASES = [
    pytest.param(S.DEPLOYMENT_CONFIGS,
                 dc([{"type": "ConfigChange"},
                     {"type": "ImageChange", "imageChangeParams": {"automatic": True, "containerNames": ["app"],
                                                                   "from": ist(f"{KIT}:7")}},
                     {"type": "ImageChange", "imageChangeParams": {"from": ist("base:1.0", "images")}}],
                    {"app": f"{REG}/shop/{KIT}@{D1}"}),
                 {("spec.template.spec.containers[app].image", f"{REG}/shop/{KIT}@{D1}"),
                  ("spec.triggers[1].imageChangeParams.from.name", f"{REG}/shop/{KIT}:7"),
                  ("spec.triggers[2].imageChangeParams.from.name", f"{REG}/images/base:1.0")},
                 id="deploymentconfig-template-and-image-change-triggers"),
    pytest.param(S.DEPLOYMENT_CONFIGS, dc([{"type": "ImageChange", "imageChangeParams": {"from": ist(KIT)}}]),
                 {("spec.triggers[0].imageChangeParams.from.name", f"{REG}/shop/{KIT}:latest")},
                 id="deploymentconfig-trigger-without-tag-is-latest"),
    pytest.param(S.DEPLOYMENT_CONFIGS, dc([{"type": "ImageChange", "imageChangeParams": {"from": {}}}]), set(),
                 id="deploymentconfig-empty-from"),
    pytest.param(S.BUILD_CONFIGS,
                 bc({"strategy": {"type": "Source", "sourceStrategy": {"from": ist("java:17", "openshift")}},
                     "source": {"type": "Image", "images": [{"from": docker("quay.io/acme/tools:2"), "as": ["t"]},
                                                            {"from": isi(f"assets@{D2}")}]},
                     "triggers": [{"type": "ImageChange", "imageChange": {}},
                                  {"type": "ImageChange", "imageChange": {"from": ist("java:17", "openshift")}},
                                  {"type": "GitHub", "github": {"secretReference": {"name": "hook"}}}],
                     "output": {"to": ist(f"{KIT}:12345")}}),
                 {("spec.strategy.sourceStrategy.from.name", f"{REG}/openshift/java:17"),
                  ("spec.source.images[0].from.name", "quay.io/acme/tools:2"),
                  ("spec.source.images[1].from.name", f"{REG}/shop/assets@{D2}"),
                  ("spec.triggers[1].imageChange.from.name", f"{REG}/openshift/java:17"),
                  ("spec.output.to.name", f"{REG}/shop/{KIT}:12345")},
                 id="buildconfig-source-strategy-images-triggers-output"),
    pytest.param(S.BUILD_CONFIGS,
                 bc({"strategy": {"type": "Docker", "dockerStrategy": {"from": docker(f"quay.io/acme/base@{D1}")}},
                     "output": {"to": docker("quay.io/acme/out:1")}}),
                 {("spec.strategy.dockerStrategy.from.name", f"quay.io/acme/base@{D1}"),
                  ("spec.output.to.name", "quay.io/acme/out:1")},
                 id="buildconfig-docker-strategy-docker-image-output"),
    pytest.param(S.BUILD_CONFIGS,
                 bc({"strategy": {"type": "Custom", "customStrategy": {"from": isi(f"builder@{D2}")}}}),
                 {("spec.strategy.customStrategy.from.name", f"{REG}/shop/builder@{D2}")},
                 id="buildconfig-custom-strategy-image-stream-image"),
    pytest.param(S.BUILD_CONFIGS,  # Camel K's S2I kit: Docker, no from, binary source
                 bc({"source": {"type": "Binary", "binary": {}}, "strategy": {"type": "Docker", "dockerStrategy": {}},
                     "output": {"to": ist(f"{KIT}:12345")}, "triggers": []}),
                 {("spec.output.to.name", f"{REG}/shop/{KIT}:12345")}, id="buildconfig-camel-k-s2i"),
    pytest.param(S.IMAGE_STREAMS,
                 stream("java", [{"name": "17", "from": docker("registry.access.redhat.com/ubi9/openjdk-17:1.20")},
                                 {"name": "latest", "from": ist("17")},
                                 {"name": "lts", "from": ist("java:17")},
                                 {"name": "pinned", "from": isi(f"java@{D1}")},
                                 {"name": "pushed"}]),
                 {("spec.tags[17].from.name", "registry.access.redhat.com/ubi9/openjdk-17:1.20"),
                  ("spec.tags[latest].from.name", f"{REG}/shop/java:17"),
                  ("spec.tags[lts].from.name", f"{REG}/shop/java:17"),
                  ("spec.tags[pinned].from.name", f"{REG}/shop/java@{D1}")},
                 id="imagestream-spec-tags"),
    pytest.param(S.IMAGE_STREAMS, stream(KIT), set(), id="imagestream-of-pushed-tags-only"),
    pytest.param(S.DEPLOYMENTS, annotated(o.deployment("d", "shop"), json.dumps([trigger(ist(f"{KIT}:7"))])),
                 {(f"{TRIGGERS}[0].from.name", f"{REG}/shop/{KIT}:7")}, id="deployment-triggers-annotation"),
    pytest.param(S.STATEFULSETS, annotated(o.statefulset("db", "shop", images={"db": "postgres:16"}), json.dumps(
        [trigger(ist("pg:16", "images")), {**trigger(ist(f"{KIT}:8")), "paused": True}])),
                 {("spec.template.spec.containers[db].image", "docker.io/library/postgres:16"),
                  (f"{TRIGGERS}[0].from.name", f"{REG}/images/pg:16"),
                  (f"{TRIGGERS}[1].from.name", f"{REG}/shop/{KIT}:8")}, id="statefulset-triggers-annotation-paused"),
    pytest.param(S.CRONJOBS, annotated(o.cronjob("nightly", "shop", images={"job": "busybox"}),
                                       json.dumps([trigger(ist(f"{KIT}:9"), "spec.jobTemplate.spec.template.spec."
                                                                            "containers[0].image")])),
                 {("spec.jobTemplate.spec.template.spec.containers[job].image", "docker.io/library/busybox"),
                  (f"{TRIGGERS}[0].from.name", f"{REG}/shop/{KIT}:9")}, id="cronjob-triggers-annotation"),
    pytest.param(S.DEPLOYMENTS, annotated(o.deployment("d", "shop"), ""), set(), id="empty-triggers-annotation"),
    pytest.param(S.DEPLOYMENTS, annotated(o.deployment("d", "shop"), "[]"), set(), id="no-triggers"),
]


@pytest.mark.parametrize(("source", "obj", "expected"), CASES)
def test_openshift_extraction_rule(source, obj, expected):
    assert refs(source, obj) == expected


def test_references_name_openshift_kinds_with_their_group():
    (ref,) = extract(S.BUILD_CONFIGS, bc({"output": {"to": ist(f"{KIT}:1")}}), NOW).references
    assert ref.source == ObjectRef("BuildConfig.build.openshift.io", KIT, "shop")
    assert ref.image == parse(f"{REG}/shop/{KIT}:1") and ref.image.repository == f"shop/{KIT}"
    (ref,) = extract(S.DEPLOYMENT_CONFIGS, dc([{"imageChangeParams": {"from": ist("a:1")}}]), NOW).references
    assert ref.source.kind == "DeploymentConfig.apps.openshift.io"
    (ref,) = extract(S.IMAGE_STREAMS, stream("a", [{"name": "x", "from": ist("1")}]), NOW).references
    assert ref.source == ObjectRef("ImageStream.image.openshift.io", "a", "shop")


def test_the_triggers_annotation_is_read_on_every_source():
    value = json.dumps([trigger(ist(f"{KIT}:7"))])
    for source in S.SOURCES:
        obj = annotated({"metadata": {"name": "x", "namespace": "shop"}, "spec": {}, "status": {"phase": "Ready"}},
                        value)
        found = extract(source, obj, NOW)
        assert [(r.field, str(r.image)) for r in found.references] == [
            (f"{TRIGGERS}[0].from.name", f"{REG}/shop/{KIT}:7")], source


@pytest.mark.parametrize(("value", "field"), [
    ("not json", TRIGGERS), ("{]", TRIGGERS), ('{"from": {}}', TRIGGERS), ("null", TRIGGERS), ('["x"]', TRIGGERS),
    (json.dumps([{"fieldPath": "spec.x"}]), TRIGGERS), (json.dumps([trigger("stream:1")]), TRIGGERS),
    (json.dumps([trigger({"kind": "Deployment", "name": "x"})]), f"{TRIGGERS}[0].from"),
    (json.dumps([trigger({"kind": "ImageStreamTag"})]), f"{TRIGGERS}[0].from.name"),
    (json.dumps([trigger(ist("a:b:c"))]), f"{TRIGGERS}[0].from.name"),
])
def test_a_triggers_annotation_that_cannot_be_understood_is_unparsable(value, field):
    found = extract(S.DEPLOYMENTS, annotated(o.deployment("d", "shop"), value), NOW)
    assert found.references == []
    assert [(u.field, u.source) for u in found.unparsable] == [(field, ObjectRef("Deployment", "d", "shop"))]
    assert found.unparsable[0].error


@pytest.mark.parametrize(("from_", "why"), [
    ({"kind": "ImageStream", "name": "a"}, "unknown kind"),
    ({"name": "a:1"}, "unknown kind"),
    ({"kind": "ImageStreamTag", "name": ""}, "without a name"),
    ({"kind": "DockerImage", "name": 7}, "without a name"),
    ({"kind": "DockerImage"}, "without a name"),
    ({"kind": "ImageStreamImage", "name": "a"}, "not <stream>@<digest>"),
    ({"kind": "ImageStreamImage", "name": "a@sha256:short"}, "invalid"),
    ({"kind": "ImageStreamTag", "name": f"a@{D1}"}, "names an image"),
    ({"kind": "ImageStreamTag", "name": "a/b:1"}, "no image stream"),
    ({"kind": "ImageStreamTag", "name": "UPPER:1"}, "lower-case"),
    ({"kind": "ImageStreamTag", "name": "a:bad tag"}, "white space"),
    ({"kind": "DockerImage", "name": "Not An Image"}, "white space"),
    ("a:1", "not an object reference"),
])
def test_an_object_reference_that_cannot_be_understood_is_unparsable(from_, why):
    found = extract(S.BUILD_CONFIGS, bc({"strategy": {"sourceStrategy": {"from": from_}}}), NOW)
    assert found.references == []
    (bad,) = found.unparsable
    assert bad.field.startswith("spec.strategy.sourceStrategy.from") and why in bad.error, bad


def test_image_stream_image_may_name_its_namespace():
    found = extract(S.BUILD_CONFIGS, bc({"output": {"to": isi(f"other/a@{D1}")}}), NOW)
    assert [str(r.image) for r in found.references] == [f"{REG}/other/a@{D1}"]


@pytest.mark.parametrize(("local", "expected"), [(True, {("shop", "java")}), (False, set()), (None, set()),
                                                 ("true", set())])
def test_image_streams_with_local_lookup_are_remembered(local, expected):
    assert extract(S.IMAGE_STREAMS, stream("java", local=local), NOW).local_streams == expected


# --- bare names under lookupPolicy.local --------------------------------------------------


@pytest.mark.parametrize(("image", "short"), [
    (f"{KIT}:7", True), (f"{KIT}@{D1}", True), (KIT, True), ("localhost:5000", True),
    (f"docker.io/library/{KIT}:7", False), (f"library/{KIT}:7", False), (f"docker.io/{KIT}:7", False),
    (f"shop/{KIT}:7", False), (f"quay.io/{KIT}:7", False), (f"{REG}/shop/{KIT}:7", False),
])
def test_only_names_without_host_and_path_count_as_bare(image, short):
    found = extract(S.PODS, o.pod("p", "shop", images={"app": image}), NOW)
    assert [r.field for r in found.short] == (["spec.containers[app].image"] if short else [])


def test_runtime_values_are_not_bare_names():
    found = extract(S.PODS, o.pod("p", "shop", images={"app": f"{REG}/shop/{KIT}:7"},
                                  image_ids={"app": f"docker-pullable://{REG}/shop/{KIT}@{D1}"}), NOW)
    assert found.short == [] and len(found.references) == 3


def _short(image: str, ns: str | None = "shop", field: str = "spec.containers[app].image") -> Reference:
    return Reference(parse(image), ObjectRef("Pod", "p", ns), field)


def test_a_bare_name_resolves_through_a_local_image_stream_of_its_namespace():
    tag, digest, bare = _short(f"{KIT}:7"), _short(f"{KIT}@{D1}"), _short(KIT)
    out = resolved([tag, digest, bare], {("shop", KIT)})
    field = f"spec.containers[app].image (ImageStream {KIT}, lookupPolicy.local)"
    assert [(str(r.image), r.source, r.field) for r in out] == [
        (f"{REG}/shop/{KIT}:7", tag.source, field), (f"{REG}/shop/{KIT}@{D1}", digest.source, field),
        (f"{REG}/shop/{KIT}", bare.source, field)]
    assert out[0].image.repository == f"shop/{KIT}" and out[2].image.effective_tag == "latest"


@pytest.mark.parametrize("ref", [
    _short(f"{KIT}:7", ns="other"),  # a stream serves its own namespace only
    _short(f"{KIT}:7", ns=None),
    _short("nginx:1"),  # no stream of that name
    _short(f"quay.io/{KIT}:7"),  # not Docker Hub: cannot be a bare name
    _short(f"docker.io/acme/{KIT}:7"),  # a path
])
def test_nothing_else_resolves(ref):
    assert resolved([ref], {("shop", KIT), ("other-ns", "nginx")}) == []


def test_resolution_adds_to_the_references_and_keeps_the_original():
    found = Found()
    for obj, source in ((o.pod("p", "shop", images={"app": f"{KIT}:7", "side": f"docker.io/library/{KIT}:8"}), S.PODS),
                        (stream(KIT), S.IMAGE_STREAMS), (stream("nginx", local=False), S.IMAGE_STREAMS),
                        (o.deployment("d", "shop", images={"web": "nginx:1"}), S.DEPLOYMENTS)):
        found.extend(extract(source, obj, NOW))
    assert found.local_streams == {("shop", KIT)}
    assert [(r.source.name, str(r.image)) for r in with_local_lookups(found)] == [
        ("p", f"docker.io/library/{KIT}:7"), ("p", f"docker.io/library/{KIT}:8"),
        ("d", "docker.io/library/nginx:1"), ("p", f"{REG}/shop/{KIT}:7")]
