"""The emulator serves OpenShift's image, apps and build APIs, and deletes dependents of what is deleted."""

from __future__ import annotations

import json

import kubernetes
import pytest

from testbed import objects as o
from testbed import openshift as os_
from testbed.kubeapi import KubeAPI
from testbed.openshift import IMAGE, OPENSHIFT_APPS, OPENSHIFT_BUILD, REGISTRY_HOST

D1, D2, D3 = o.digest(1), o.digest(2), o.digest(3)


def _status(exc: kubernetes.client.ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == exc.status
    return body


@pytest.fixture
def openshift(kube):
    for group in os_.GROUPS:
        kube.serve(group)
    return kube


@pytest.fixture
def custom(openshift):
    return kubernetes.client.CustomObjectsApi(openshift.client())


def _missing(call, *args) -> dict:
    with pytest.raises(kubernetes.client.ApiException) as err:
        call(*args)
    assert err.value.status == 404
    body = _status(err.value)
    assert body["reason"] == "NotFound"
    return body


def test_discovery_lists_the_openshift_groups_only_while_served(kube):
    client = kube.client()
    apis, custom = kubernetes.client.ApisApi(client), kubernetes.client.CustomObjectsApi(client)
    assert not {IMAGE, OPENSHIFT_APPS, OPENSHIFT_BUILD} & {g.name for g in apis.get_api_versions().groups}
    _missing(custom.get_api_resources, IMAGE, "v1")
    _missing(custom.list_cluster_custom_object, IMAGE, "v1", "imagestreams")

    for group in os_.GROUPS:
        kube.serve(group)
    groups = {g.name: g for g in apis.get_api_versions().groups}
    assert {IMAGE, OPENSHIFT_APPS, OPENSHIFT_BUILD} <= set(groups) and "apps" in groups
    assert groups[IMAGE].preferred_version.group_version == "image.openshift.io/v1"
    image = {r.name: r for r in custom.get_api_resources(IMAGE, "v1").resources}
    assert {n: r.namespaced for n, r in image.items()} == {"imagestreams": True, "images": False,
                                                           "imagestreamtags": True}
    assert image["imagestreamtags"].kind == "ImageStreamTag" and "delete" in image["imagestreamtags"].verbs
    assert [r.kind for r in custom.get_api_resources(OPENSHIFT_APPS, "v1").resources] == ["DeploymentConfig"]
    assert [r.kind for r in custom.get_api_resources(OPENSHIFT_BUILD, "v1").resources] == ["BuildConfig"]

    kube.serve(OPENSHIFT_BUILD, on=False)
    assert OPENSHIFT_BUILD not in {g.name for g in apis.get_api_versions().groups}
    _, listed = KubeAPI(openshift=True).answer("GET", "/apis", {}, None)
    assert {IMAGE, OPENSHIFT_APPS, OPENSHIFT_BUILD} <= {g["name"] for g in listed["groups"]}


def test_image_streams_list_with_limit_and_continue(openshift, custom):
    openshift.add(*(os_.image_stream(f"s{i}", "ns1" if i % 2 else "ns2", tags={"latest": [(o.digest(i), o.CREATED)]})
                    for i in range(5)))
    names, token, pages = [], None, 0
    while True:
        page = custom.list_cluster_custom_object(IMAGE, "v1", "imagestreams", limit=2, _continue=token)
        assert page["kind"] == "ImageStreamList" and page["apiVersion"] == "image.openshift.io/v1"
        names += [s["metadata"]["name"] for s in page["items"]]
        pages += 1
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 3 and sorted(names) == [f"s{i}" for i in range(5)]
    ns1 = custom.list_namespaced_custom_object(IMAGE, "v1", "ns1", "imagestreams")
    assert [s["metadata"]["name"] for s in ns1["items"]] == ["s1", "s3"]
    stream = ns1["items"][0]
    assert stream["spec"]["lookupPolicy"] == {"local": True}
    assert stream["status"]["dockerImageRepository"] == f"{REGISTRY_HOST}/ns1/s1"
    assert stream["status"]["tags"] == [{"tag": "latest", "items": [
        {"created": o.CREATED, "dockerImageReference": f"{REGISTRY_HOST}/ns1/s1@{o.digest(1)}", "image": o.digest(1),
         "generation": 1}]}]


def test_an_image_is_cluster_scoped_and_named_by_its_digest(openshift, custom):
    openshift.add(os_.image(D1, layers=[(D2, 300), (D3, 40, "application/vnd.oci.image.layer.v1.tar+gzip")],
                            reference=f"{REGISTRY_HOST}/shop/orders@{D1}"))
    img = custom.get_cluster_custom_object(IMAGE, "v1", "images", D1)
    assert img["kind"] == "Image" and img["metadata"]["name"] == D1 and "namespace" not in img["metadata"]
    assert img["dockerImageReference"] == f"{REGISTRY_HOST}/shop/orders@{D1}"
    assert img["dockerImageMetadata"]["Size"] == 340
    assert img["dockerImageLayers"] == [
        {"name": D2, "size": 300, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"},
        {"name": D3, "size": 40, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]
    assert os_.image(D1, 7)["dockerImageMetadata"]["Size"] == 7
    assert _missing(custom.get_cluster_custom_object, IMAGE, "v1", "images", D2)["message"] == (
        f'images.image.openshift.io "{D2}" not found')


def _stream_with_two_tags(kube) -> None:
    kube.add(os_.image_stream("orders", "shop", tags={"1": [(D1, "2024-02-01T00:00:00Z"), (D3, o.CREATED)],
                                                      "2": [(D2, "2024-03-01T00:00:00Z")]},
                              spec_tags={"2": ("DockerImage", "quay.io/shop/orders:2")}),
             os_.image(D1, 100), os_.image(D2, 200))


def test_an_image_stream_tag_is_the_tags_current_image(openshift, custom):
    _stream_with_two_tags(openshift)
    tag = custom.get_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreamtags", "orders:1")
    stream = custom.get_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreams", "orders")
    assert tag["kind"] == "ImageStreamTag" and tag["metadata"]["name"] == "orders:1"
    assert tag["metadata"]["uid"] == stream["metadata"]["uid"]
    assert tag["metadata"]["creationTimestamp"] == "2024-02-01T00:00:00Z" and tag["tag"] is None
    assert tag["image"]["metadata"]["name"] == D1 and tag["image"]["dockerImageMetadata"]["Size"] == 100
    assert tag["image"]["dockerImageReference"] == f"{REGISTRY_HOST}/shop/orders@{D1}"
    assert tag["lookupPolicy"] == {"local": True}
    tracked = custom.get_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreamtags", "orders:2")
    assert tracked["tag"]["from"] == {"kind": "DockerImage", "name": "quay.io/shop/orders:2"}

    listed = custom.list_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreamtags")
    assert [(t["metadata"]["name"], t["image"]["metadata"]["name"]) for t in listed["items"]] == [
        ("orders:1", D1), ("orders:2", D2)]


def test_missing_stream_tag_or_image_is_404_not_found(openshift, custom):
    _stream_with_two_tags(openshift)
    get = custom.get_namespaced_custom_object
    assert _missing(get, IMAGE, "v1", "shop", "imagestreamtags", "orders:9")["message"] == (
        'imagestreamtags.image.openshift.io "orders:9" not found')
    assert _missing(get, IMAGE, "v1", "shop", "imagestreamtags", "nope:1")["message"] == (
        'imagestreams.image.openshift.io "nope" not found')
    openshift.add(os_.image_stream("bare", "shop", tags={"1": [(D3, o.CREATED)]}))  # no Image object for D3
    assert _missing(get, IMAGE, "v1", "shop", "imagestreamtags", "bare:1")["details"]["kind"] == "images"
    delete = custom.delete_namespaced_custom_object
    assert _missing(delete, IMAGE, "v1", "shop", "imagestreamtags", "orders:9")["details"] == {
        "name": "orders:9", "group": IMAGE, "kind": "imagestreamtags"}
    _missing(delete, IMAGE, "v1", "other", "imagestreamtags", "orders:1")
    with pytest.raises(kubernetes.client.ApiException) as bad:
        get(IMAGE, "v1", "shop", "imagestreamtags", "orders")
    assert bad.value.status == 400 and _status(bad.value)["reason"] == "BadRequest"


def test_deleting_an_image_stream_tag_clears_it_from_the_stream(openshift, custom):
    _stream_with_two_tags(openshift)
    before = custom.get_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreams", "orders")
    gone = custom.delete_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreamtags", "orders:2")
    assert gone["kind"] == "Status" and gone["status"] == "Success"
    stream = custom.get_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreams", "orders")
    assert [t["tag"] for t in stream["status"]["tags"]] == ["1"] and "tags" not in stream["spec"]
    assert int(stream["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert stream["metadata"]["generation"] == before["metadata"]["generation"] + 1

    custom.delete_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreamtags", "orders:1")
    stream = custom.get_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreams", "orders")
    assert "tags" not in stream["status"] and stream["status"]["dockerImageRepository"]
    _missing(custom.get_namespaced_custom_object, IMAGE, "v1", "shop", "imagestreamtags", "orders:1")
    images = custom.list_cluster_custom_object(IMAGE, "v1", "images")["items"]
    assert {i["metadata"]["name"] for i in images} == {D1, D2}  # history and images are the pruner's business


def test_listing_image_stream_tags_with_a_limit_covers_only_the_first_streams(openshift, custom):
    openshift.add(*(os_.image_stream(f"s{i}", "shop", tags={"a": [(D1, o.CREATED)], "b": [(D2, o.CREATED)]})
                    for i in range(3)))
    every = custom.list_cluster_custom_object(IMAGE, "v1", "imagestreamtags")
    assert len(every["items"]) == 6
    limited = custom.list_cluster_custom_object(IMAGE, "v1", "imagestreamtags", limit=2)
    assert [t["metadata"]["name"] for t in limited["items"]] == ["s0:a", "s0:b", "s1:a", "s1:b"]
    assert "continue" not in limited["metadata"]


def test_deleting_an_s2i_kit_deletes_the_stream_and_build_config_it_controls(openshift, custom):
    s2i = os_.integration_kit_s2i(o.kit_name(1), "shop", seed=1, integration="orders")
    other = os_.integration_kit_s2i(o.kit_name(2), "shop", seed=2)
    openshift.add(*s2i, *other, os_.image_stream(f"camel-k-{o.kit_name(3)}", "shop", tags={"x": [(D3, o.CREATED)]}))
    kit = custom.get_namespaced_custom_object("camel.apache.org", "v1", "shop", "integrationkits", o.kit_name(1))
    assert kit["metadata"]["uid"] == s2i.stream["metadata"]["ownerReferences"][0]["uid"]
    assert kit["status"]["image"] == f"{REGISTRY_HOST}/shop/camel-k-{o.kit_name(1)}@{o.digest(1)}"

    custom.delete_namespaced_custom_object("camel.apache.org", "v1", "shop", "integrationkits", o.kit_name(1))
    streams = custom.list_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreams")["items"]
    assert sorted(s["metadata"]["name"] for s in streams) == sorted([f"camel-k-{o.kit_name(2)}",
                                                                      f"camel-k-{o.kit_name(3)}"])
    bcs = custom.list_namespaced_custom_object(OPENSHIFT_BUILD, "v1", "shop", "buildconfigs")["items"]
    assert [b["metadata"]["name"] for b in bcs] == [f"camel-k-{o.kit_name(2)}"]
    assert len(custom.list_cluster_custom_object(IMAGE, "v1", "images")["items"]) == 2  # Images are not owned
    deletes = [(r.method, r.path) for r in openshift.writes()]
    assert deletes == [("DELETE", f"/apis/camel.apache.org/v1/namespaces/shop/integrationkits/{o.kit_name(1)}")]


def test_an_owner_without_the_builders_uid_is_matched_by_kind_and_name_in_its_namespace(openshift, custom):
    openshift.add(o.integration_kit("kit-a", "shop"), o.integration_kit("kit-a", "other"),
                  os_.image_stream("camel-k-kit-a", "shop", owner="kit-a"),
                  os_.image_stream("camel-k-kit-a", "other", owner="kit-a"))
    custom.delete_namespaced_custom_object("camel.apache.org", "v1", "other", "integrationkits", "kit-a")
    left = custom.list_cluster_custom_object(IMAGE, "v1", "imagestreams")["items"]
    assert [s["metadata"]["namespace"] for s in left] == ["shop"]


def test_deletion_cascades_through_chains_and_spares_objects_with_another_owner(kube):
    dep, rs = ("apps/v1", "Deployment", "web"), ("apps/v1", "ReplicaSet", "web-1")
    shared = o.pod("shared", images=["x"], owner=rs)
    shared["metadata"]["ownerReferences"].append(o.owner_reference("v1", "Node", "worker-1", controller=False))
    kube.add(o.deployment("web", images=["x"]), o.replicaset("web-1", images=["x"], owner=dep),
             o.pod("web-1-a", images=["x"], owner=rs), shared, o.pod("loner", images=["x"]),
             o.replicaset("web-1", "elsewhere", images=["x"], owner=dep))
    client = kube.client()
    kubernetes.client.AppsV1Api(client).delete_namespaced_deployment("web", "default")
    core = kubernetes.client.CoreV1Api(client)
    pods = {p.metadata.name: p for p in core.list_namespaced_pod("default").items}
    assert set(pods) == {"shared", "loner"}
    assert [r.kind for r in pods["shared"].metadata.owner_references] == ["Node"]
    assert [r.metadata.name for r in kubernetes.client.AppsV1Api(client).list_replica_set_for_all_namespaces().items] \
        == ["web-1"]


def test_orphan_propagation_keeps_dependents_and_drops_their_references(kube):
    kube.add(o.replicaset("web-1", images=["x"]), o.pod("p", images=["x"], owner=("apps/v1", "ReplicaSet", "web-1")))
    client = kube.client()
    kubernetes.client.AppsV1Api(client).delete_namespaced_replica_set("web-1", "default", propagation_policy="Orphan")
    pod = kubernetes.client.CoreV1Api(client).read_namespaced_pod("p", "default")
    assert pod.metadata.owner_references is None


def test_store_level_deletes_and_a_collector_turned_off_leave_dependents(kube):
    rs = ("apps/v1", "ReplicaSet", "web-1")
    kube.add(o.replicaset("web-1", images=["x"]), o.pod("p", images=["x"], owner=rs))
    kube.api.store.delete(kube.api.store.resource("apps", "v1", "replicasets"), "default", "web-1")
    core = kubernetes.client.CoreV1Api(kube.client())
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["p"]
    kube.api.garbage_collect = False
    kube.add(o.replicaset("web-1", images=["x"]))
    kubernetes.client.AppsV1Api(kube.client()).delete_namespaced_replica_set("web-1", "default")
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["p"]


def test_deployment_and_build_configs_have_openshifts_shapes(openshift, custom):
    openshift.add(os_.deployment_config("orders", "shop", images={"app": f"{REGISTRY_HOST}/shop/orders@{D1}"},
                                        triggers={"app": "orders:latest"}),
                  os_.build_config("orders", "shop", strategy="Source", base=("ImageStreamTag", "java:17", "openshift"),
                                   output=("DockerImage", "quay.io/shop/orders:1"), binary=False))
    dc = custom.get_namespaced_custom_object(OPENSHIFT_APPS, "v1", "shop", "deploymentconfigs", "orders")
    containers = dc["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "app", "image": f"{REGISTRY_HOST}/shop/orders@{D1}"}]
    assert dc["spec"]["triggers"][1] == {"type": "ImageChange", "imageChangeParams": {
        "automatic": True, "containerNames": ["app"],
        "from": {"kind": "ImageStreamTag", "name": "orders:latest", "namespace": "shop"}}}
    bc = custom.get_namespaced_custom_object(OPENSHIFT_BUILD, "v1", "shop", "buildconfigs", "orders")
    assert bc["spec"]["strategy"] == {"type": "Source", "sourceStrategy": {
        "from": {"kind": "ImageStreamTag", "name": "java:17", "namespace": "openshift"}}}
    assert bc["spec"]["output"] == {"to": {"kind": "DockerImage", "name": "quay.io/shop/orders:1"}}
    with pytest.raises(ValueError, match="needs a base image"):
        os_.build_config("x", strategy="Custom")


def test_a_created_image_stream_gets_its_repository_from_the_server(openshift, custom):
    created = custom.create_namespaced_custom_object(IMAGE, "v1", "shop", "imagestreams", {
        "apiVersion": "image.openshift.io/v1", "kind": "ImageStream", "metadata": {"name": "orders"},
        "spec": {"lookupPolicy": {"local": False}}})
    assert created["status"] == {"dockerImageRepository": f"{REGISTRY_HOST}/shop/orders"}
