"""The projected decode of list pages is a fast path, never a different answer.

For every projected source and any object, either the projection declines the page (the
reader then decodes it in full) or extraction from the projected object finds exactly
what it finds from the full one: the same references, kits, kit uses and unparsable
values. Objects come from the extraction rules' cases, from the benchmark's realistic
scene, and from a generator that perturbs every field extraction reads (missing, null,
another type, invalid images, extra fields).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.cluster import sources as S
from kitgc.cluster.extract import KIT_TYPE_LABEL, extract
from kitgc.cluster.openshift_refs import TRIGGERS_ANNOTATION
from kitgc.cluster.projection import decode_page, projected
from kitgc.cluster.traits import CONTAINER_IMAGE_ANNOTATION
from testbed import objects as o
from tests.test_cluster_reader import CASES
from tests.test_openshift_references import CASES as OPENSHIFT_CASES

NOW = datetime(2025, 6, 1, tzinfo=UTC)
PROJECTED = [s for s in S.SOURCES if projected(s)]


def _same(source: S.Source, obj: Any) -> bool:
    """True when the projection declined the page; asserts equality otherwise."""
    page = json.dumps({"kind": "List", "metadata": {"continue": "t"}, "items": [obj]}).encode()
    fast = decode_page(source, page)
    if fast is None:
        return True
    items, token = fast
    assert token == "t"
    assert len(items) == 1
    assert extract(source, items[0], NOW) == extract(source, obj, NOW)
    return False


def test_every_high_volume_source_is_projected():
    assert set(PROJECTED) >= {S.PODS, S.DEPLOYMENTS, S.REPLICASETS, S.JOBS, S.CRONJOBS, S.INTEGRATIONS,
                              S.INTEGRATION_KITS, S.REPLICATION_CONTROLLERS, S.KNATIVE_CONFIGURATIONS, S.PIPES,
                              S.KAMELET_BINDINGS, S.DEPLOYMENT_CONFIGS, S.BUILD_CONFIGS, S.IMAGE_STREAMS}
    assert not projected(S.BUILDS)  # images at any depth: always decoded in full
    assert not projected(S.INTEGRATION_PLATFORMS)  # discovery reads them in full


@pytest.mark.parametrize(("source", "obj", "expected"), [c for c in [*CASES, *OPENSHIFT_CASES]
                                                          if projected(c.values[0])])
def test_extraction_cases_agree_and_take_the_fast_path(source, obj, expected):
    assert not _same(source, obj), "a well-formed object should not need the full decode"


def test_realistic_scene_objects_agree():
    from bench.cluster import build_objects
    from bench.scene import SceneSpec, plan_kits

    spec = SceneSpec(repositories=30, in_use=20)
    kinds = {s.kind: s for s in PROJECTED}
    seen = set()
    for i, obj in enumerate(build_objects(spec, plan_kits(spec))):
        source = kinds.get(obj["kind"])
        if source is not None and (i % 7 == 0 or obj["kind"] not in seen):
            seen.add(obj["kind"])
            assert not _same(source, obj)
    assert seen >= {"Pod", "Deployment", "ReplicaSet", "Integration", "IntegrationKit"}


@pytest.mark.parametrize("body", [b"{}", b'{"kind": "Status"}', b"[]", b"null", b"<html>", b'{"items": {}}',
                                  b'{"items": [1]}', b'{"items": [{"metadata": 3}]}'])
def test_what_is_not_a_list_of_objects_is_left_to_the_full_decode(body):
    for source in PROJECTED:
        assert decode_page(source, body) is None


def test_null_items_is_an_empty_page():
    assert decode_page(S.PODS, b'{"items": null}') == ([], None)


# --- generated objects -------------------------------------------------------------------

IMAGES = st.sampled_from(["nginx", "quay.io/a/b:1", f"reg.example:5000/o/camel-k-kit-x@{o.digest(1)}",
                          f"docker-pullable://r.io/x@{o.digest(2)}", o.digest(3), "", "UPPER/case", "a b", "x@y"])
SCALARS = st.one_of(st.none(), IMAGES, st.integers(-5, 10**20), st.booleans(), st.floats(allow_nan=False))


def perturbed(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or absent/null/another type (``...`` marks absent)."""
    odd = st.one_of(SCALARS, st.lists(SCALARS, max_size=2),
                    st.dictionaries(st.sampled_from(["x", "image", "name"]), SCALARS, max_size=2))
    return st.one_of(*[value] * 12, st.just(...), st.none(), odd)  # mostly well-formed: both paths run


def obj_of(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    extra = st.dictionaries(st.sampled_from(["extra", "env", "ports", "managedFields"]), SCALARS, max_size=2)

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        out = draw(extra)
        for key, strategy in fields.items():
            value = draw(perturbed(strategy))
            if value is not ...:
                out[key] = value
        return out

    return build()


NAME = st.sampled_from(["app", "side", ""])
CONTAINER = obj_of({"name": NAME, "image": IMAGES})
STATUS = obj_of({"name": NAME, "image": IMAGES, "imageID": IMAGES, "imageDigest": IMAGES})
CONTAINERS = st.lists(CONTAINER, max_size=2)
STATUSES = st.lists(STATUS, max_size=2)
POD_SPEC = obj_of({"containers": CONTAINERS, "initContainers": CONTAINERS, "ephemeralContainers": CONTAINERS})
TEMPLATE = obj_of({"spec": POD_SPEC})
KIT_REF = obj_of({"name": NAME, "namespace": NAME})
OWNER_REF = obj_of({"apiVersion": st.sampled_from(["v1", "apps/v1", "serving.knative.dev/v1", "camel.apache.org/v1"]),
                    "kind": st.sampled_from(["ReplicaSet", "Integration", "Configuration", ""]), "name": NAME,
                    "uid": st.just("0f1e2d3c"), "controller": st.booleans(), "blockOwnerDeletion": st.booleans()})
TRAITS = obj_of({"container": obj_of({"image": IMAGES, "configuration": obj_of({"image": IMAGES})})})
ANNOTATION_VALUES = st.one_of(IMAGES, st.lists(IMAGES, max_size=3).map(lambda xs: "[" + ", ".join(
    f'"{x}"' for x in xs) + "]"))
OBJECT_REFERENCE = obj_of({"kind": st.sampled_from(["DockerImage", "ImageStreamTag", "ImageStreamImage", "Pod", ""]),
                           "name": st.one_of(IMAGES, st.sampled_from(["s:1", "s", f"s@{o.digest(4)}", "s@x"])),
                           "namespace": NAME, "apiVersion": st.just("image.openshift.io/v1")})
FROM = obj_of({"from": OBJECT_REFERENCE, "as": st.just(["x"])})
TRIGGER_VALUES = st.one_of(
    st.lists(obj_of({"from": OBJECT_REFERENCE, "fieldPath": st.just("spec.x"), "paused": st.booleans()}),
             max_size=2).map(json.dumps),
    st.sampled_from(["", "[", "null", "{}", "[1]"]))
ANNOTATIONS = st.fixed_dictionaries({}, optional={CONTAINER_IMAGE_ANNOTATION: ANNOTATION_VALUES,
                                                  TRIGGERS_ANNOTATION: TRIGGER_VALUES,
                                                  "trait.camel.apache.org/x.y": ANNOTATION_VALUES, "icon": IMAGES})
OBJECT = obj_of({
    "metadata": obj_of({"name": NAME, "namespace": NAME, "creationTimestamp": st.sampled_from(
        ["2024-01-01T00:00:00Z", "yesterday"]), "labels": st.dictionaries(st.just(KIT_TYPE_LABEL), SCALARS),
        "ownerReferences": st.lists(OWNER_REF, max_size=3), "annotations": ANNOTATIONS}),
    "spec": obj_of({
        "containers": CONTAINERS, "initContainers": CONTAINERS, "ephemeralContainers": CONTAINERS,
        "template": TEMPLATE, "jobTemplate": obj_of({"spec": obj_of({"template": TEMPLATE})}),
        "traits": TRAITS, "integration": obj_of({"traits": TRAITS}),
        "integrationKit": KIT_REF, "kit": NAME, "image": IMAGES,
        # OpenShift: DeploymentConfig, BuildConfig and ImageStream
        "triggers": st.lists(obj_of({"type": st.just("ImageChange"), "imageChangeParams": FROM, "imageChange": FROM}),
                             max_size=2),
        "strategy": obj_of({"sourceStrategy": FROM, "dockerStrategy": FROM, "customStrategy": FROM}),
        "source": obj_of({"images": st.lists(FROM, max_size=2)}), "output": obj_of({"to": OBJECT_REFERENCE}),
        "tags": st.lists(obj_of({"name": NAME, "from": OBJECT_REFERENCE}), max_size=2),
        "lookupPolicy": obj_of({"local": st.booleans()})}),
    "status": obj_of({
        "containerStatuses": STATUSES, "initContainerStatuses": STATUSES, "ephemeralContainerStatuses": STATUSES,
        "image": IMAGES, "integrationKit": KIT_REF, "phase": st.sampled_from(["Ready", "Build Running"]),
        "baseImage": IMAGES, "rootImage": IMAGES}),
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(PROJECTED), obj=OBJECT)
def test_generated_objects_agree_or_are_decoded_in_full(source, obj):
    _same(source, obj)



# OpenShift objects well-formed down to their object references, whose fields vary: both the
# fast path and the rules' every branch (kinds, names, namespaces, unparsable ones) are exercised.
OPENSHIFT = [S.DEPLOYMENT_CONFIGS, S.BUILD_CONFIGS, S.IMAGE_STREAMS]
REF = st.one_of(st.fixed_dictionaries(
    {"kind": st.sampled_from(["DockerImage", "ImageStreamTag", "ImageStreamImage", "Pod"]),
     "name": st.one_of(st.sampled_from(["s:1", "s", f"s@{o.digest(4)}", "o/s@" + o.digest(5), "s@x", "q.io/a/b:1"]),
                       IMAGES)},
    optional={"namespace": NAME, "apiVersion": st.just("image.openshift.io/v1")}), st.just({}), SCALARS)
REF = st.one_of(REF, REF.filter(lambda r: isinstance(r, dict) and r.get("kind") != "Pod"))  # mostly readable


def some(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def listed(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, max_size=3)


WELL_FROM = some(**{"from": REF})
OPENSHIFT_OBJECT = st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({"name": st.sampled_from(["s", "web"]),
                                       "namespace": st.sampled_from(["shop", ""])},
                                      optional={"annotations": ANNOTATIONS}),
    "spec": some(template=some(spec=some(containers=CONTAINERS)),
                 triggers=listed(some(type=st.just("ImageChange"), imageChangeParams=WELL_FROM,
                                      imageChange=WELL_FROM)),
                 strategy=some(sourceStrategy=WELL_FROM, dockerStrategy=WELL_FROM, customStrategy=WELL_FROM),
                 source=some(images=listed(WELL_FROM)), output=some(to=REF),
                 tags=listed(some(name=NAME, **{"from": REF})),
                 lookupPolicy=some(local=st.one_of(st.booleans(), SCALARS))),
    "status": st.just({"tags": [{"tag": "1", "items": [{"image": o.digest(5)}]}]}),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(OPENSHIFT), obj=OPENSHIFT_OBJECT)
def test_generated_openshift_objects_agree(source, obj):
    _same(source, obj)  # declined only for a number out of range
