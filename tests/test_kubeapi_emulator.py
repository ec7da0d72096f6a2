"""The Kubernetes API emulator behaves like an API server, as seen by the real client."""

from __future__ import annotations

import json
import threading

import kubernetes
import pytest
import urllib3

from testbed import objects as o
from testbed.kubestore import KNATIVE


def _status(exc: kubernetes.client.ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


@pytest.fixture
def core(kube):
    return kubernetes.client.CoreV1Api(kube.client())


def test_list_pages_through_every_pod_with_limit_and_continue(kube, core):
    kube.add(*(o.pod(f"p{i:02}", "ns1" if i % 2 else "ns2", images=["nginx"]) for i in range(11)))
    names, token, pages = [], None, 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=4, _continue=token)
        pages += 1
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 11 - len(names)
    assert pages == 3
    assert sorted(names) == [f"p{i:02}" for i in range(11)]
    assert len(core.list_namespaced_pod("ns1", limit=100).items) == 5


def test_continue_token_serves_the_snapshot_of_the_first_page(kube, core):
    kube.add(*(o.pod(f"p{i}", images=["nginx"]) for i in range(4)))
    first = core.list_namespaced_pod("default", limit=2)
    kube.add(o.pod("p9", images=["nginx"]))
    kube.api.store.delete(kube.api.store.resource("", "v1", "pods"), "default", "p3")
    rest = core.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["p2", "p3"]
    assert rest.metadata.resource_version == first.metadata.resource_version
    fresh = core.list_namespaced_pod("default")
    assert [p.metadata.name for p in fresh.items] == ["p0", "p1", "p2", "p9"]


@pytest.mark.parametrize("token", ["expire", "garbage-token"])
def test_expired_or_invalid_continue_token_is_410_expired(kube, core, token):
    kube.add(*(o.pod(f"p{i}", images=["nginx"]) for i in range(3)))
    first = core.list_namespaced_pod("default", limit=1)
    if token == "expire":
        kube.api.expire_continue_tokens()
        token = first.metadata._continue
    with pytest.raises(kubernetes.client.ApiException) as err:
        core.list_namespaced_pod("default", limit=1, _continue=token)
    assert err.value.status == 410
    assert _status(err.value)["reason"] == "Expired"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=a", ["a1", "a2"]),
        ("app==a", ["a1", "a2"]),
        ("app!=a", ["b", "none"]),
        ("tier", ["a2", "b"]),
        ("!tier", ["a1", "none"]),
        ("app in (a, b)", ["a1", "a2", "b"]),
        ("app notin (a)", ["b", "none"]),
        ("app=a,tier=web", ["a2"]),
        ("app in (a,b),!tier", ["a1"]),
    ],
)
def test_label_selectors_filter_like_the_api_server(kube, core, selector, expected):
    kube.add(o.pod("a1", images=["x"], labels={"app": "a"}),
             o.pod("a2", images=["x"], labels={"app": "a", "tier": "web"}),
             o.pod("b", images=["x"], labels={"app": "b", "tier": "db"}), o.pod("none", images=["x"]))
    got = core.list_namespaced_pod("default", label_selector=selector)
    assert [p.metadata.name for p in got.items] == expected


def test_bad_label_selector_is_400_status(kube, core):
    with pytest.raises(kubernetes.client.ApiException) as err:
        core.list_namespaced_pod("default", label_selector="app in a")
    assert err.value.status == 400 and _status(err.value)["reason"] == "BadRequest"


def test_field_selectors_on_name_and_namespace(kube, core):
    kube.add(o.pod("x", "ns1", images=["i"]), o.pod("y", "ns1", images=["i"]), o.pod("x", "ns2", images=["i"]))
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=x")
    assert [(p.metadata.namespace, p.metadata.name) for p in by_name.items] == [("ns1", "x"), ("ns2", "x")]
    other = core.list_pod_for_all_namespaces(field_selector="metadata.namespace!=ns1")
    assert [p.metadata.name for p in other.items] == ["x"]


def test_create_sets_uid_timestamp_and_growing_resource_versions(kube, core):
    a = core.create_namespaced_config_map("default", o.configmap("a", data={"k": "v"}))
    b = core.create_namespaced_config_map("default", o.configmap("b"))
    assert a.metadata.uid and a.metadata.creation_timestamp.tzinfo is not None
    assert int(b.metadata.resource_version) > int(a.metadata.resource_version)


def test_writes_answer_conflicts_and_not_found_as_status_bodies(kube, core):
    core.create_namespaced_config_map("default", o.configmap("cm", data={"k": "1"}))
    with pytest.raises(kubernetes.client.ApiException) as exists:
        core.create_namespaced_config_map("default", o.configmap("cm"))
    assert exists.value.status == 409 and _status(exists.value)["reason"] == "AlreadyExists"

    current = core.read_namespaced_config_map("cm", "default")
    stale = current.metadata.resource_version
    current.data = {"k": "2"}
    core.replace_namespaced_config_map("cm", "default", current)
    current.metadata.resource_version = stale
    with pytest.raises(kubernetes.client.ApiException) as conflict:
        core.replace_namespaced_config_map("cm", "default", current)
    body = _status(conflict.value)
    assert conflict.value.status == 409 and body["reason"] == "Conflict"
    assert body["details"] == {"name": "cm", "group": "", "kind": "configmaps"}

    core.delete_namespaced_config_map("cm", "default")
    with pytest.raises(kubernetes.client.ApiException) as gone:
        core.delete_namespaced_config_map("cm", "default")
    assert gone.value.status == 404
    assert _status(gone.value)["message"] == 'configmaps "cm" not found'


def test_merge_patch_updates_and_removes_keys(kube, core):
    core.create_namespaced_config_map("default", o.configmap("cm", data={"a": "1", "b": "2"}))
    patched = core.patch_namespaced_config_map("cm", "default", {"data": {"a": None, "c": "3"}})
    assert patched.data == {"b": "2", "c": "3"}


def test_custom_resources_list_and_delete(kube):
    kube.add(o.integration_kit("kit-a"), o.integration_kit("kit-b"))
    custom = kubernetes.client.CustomObjectsApi(kube.client())
    kits = custom.list_cluster_custom_object("camel.apache.org", "v1", "integrationkits")
    assert [k["metadata"]["name"] for k in kits["items"]] == ["kit-a", "kit-b"]
    custom.delete_namespaced_custom_object("camel.apache.org", "v1", "camel-k", "integrationkits", "kit-a")
    with pytest.raises(kubernetes.client.ApiException) as err:
        custom.get_namespaced_custom_object("camel.apache.org", "v1", "camel-k", "integrationkits", "kit-a")
    assert _status(err.value)["message"] == 'integrationkits.camel.apache.org "kit-a" not found'


def test_discovery_shows_a_group_only_while_it_is_served(kube):
    client = kube.client()
    apis = kubernetes.client.ApisApi(client)
    assert KNATIVE not in {g.name for g in apis.get_api_versions().groups}
    with pytest.raises(kubernetes.client.ApiException) as err:
        kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object(KNATIVE, "v1", "services")
    assert err.value.status == 404

    kube.serve(KNATIVE)
    kube.serve("camel.apache.org", "integrationprofiles", on=False)
    assert KNATIVE in {g.name for g in apis.get_api_versions().groups}
    camel = kubernetes.client.CustomObjectsApi(client).get_api_resources("camel.apache.org", "v1")
    names = {r.name: r for r in camel.resources}
    assert "integrationprofiles" not in names and names["integrationkits"].namespaced
    assert "list" in names["integrationkits"].verbs
    core = kubernetes.client.CoreV1Api(client).get_api_resources()
    assert {r.name: r.namespaced for r in core.resources}["namespaces"] is False


def test_a_group_lists_every_served_version_and_kamelet_bindings_are_opt_in(kube):
    client = kube.client()
    apis = kubernetes.client.ApisApi(client)
    camel = next(g for g in apis.get_api_versions().groups if g.name == "camel.apache.org")
    assert [v.version for v in camel.versions] == ["v1"]
    with pytest.raises(kubernetes.client.ApiException) as err:
        kubernetes.client.CustomObjectsApi(client).get_api_resources("camel.apache.org", "v1alpha1")
    assert err.value.status == 404

    kube.serve("camel.apache.org", "kameletbindings")
    kube.add(o.kamelet_binding("kb", "shop"), o.pipe("p", "shop"), o.replication_controller("rc", "shop"),
             o.knative_configuration("kc", "shop", image="x"))
    camel = next(g for g in apis.get_api_versions().groups if g.name == "camel.apache.org")
    assert [v.version for v in camel.versions] == ["v1", "v1alpha1"] and camel.preferred_version.version == "v1"
    custom = kubernetes.client.CustomObjectsApi(client)
    kbs = custom.list_cluster_custom_object("camel.apache.org", "v1alpha1", "kameletbindings")
    assert [k["metadata"]["name"] for k in kbs["items"]] == ["kb"]
    assert [p["kind"] for p in custom.list_cluster_custom_object("camel.apache.org", "v1", "pipes")["items"]] == [
        "Pipe"]
    rcs = kubernetes.client.CoreV1Api(client).list_replication_controller_for_all_namespaces()
    assert [rc.metadata.name for rc in rcs.items] == ["rc"]


def test_requests_without_the_bearer_token_are_401(kube):
    http = urllib3.PoolManager()
    resp = http.request("GET", kube.api.url + "/api/v1/pods")
    assert resp.status == 401 and json.loads(resp.data)["reason"] == "Unauthorized"


def test_fault_answers_n_times_then_recovers(kube, core):
    fault = kube.inject("GET", "/api/v1/namespaces/default/pods", status=500, times=2)
    for _ in range(2):
        with pytest.raises(kubernetes.client.ApiException) as err:
            core.list_namespaced_pod("default")
        assert err.value.status == 500 and _status(err.value)["reason"] == "InternalError"
    assert core.list_namespaced_pod("default").items == []
    assert fault.hits == 2


def test_fault_403_names_the_resource_and_429_carries_retry_after(kube, core):
    kube.inject("GET", "/apis/apps/v1/deployments", status=403)
    kube.inject("GET", "/api/v1/pods", status=429, retry_after=7)
    with pytest.raises(kubernetes.client.ApiException) as forbidden:
        kubernetes.client.AppsV1Api(kube.client()).list_deployment_for_all_namespaces()
    assert _status(forbidden.value)["message"].startswith("deployments.apps is forbidden: User ")
    with pytest.raises(kubernetes.client.ApiException) as busy:
        core.list_pod_for_all_namespaces()
    assert busy.value.status == 429 and busy.value.headers["Retry-After"] == "7"


def test_fault_only_on_continue_leaves_the_first_page_alone(kube, core):
    kube.add(*(o.pod(f"p{i}", images=["x"]) for i in range(3)))
    kube.inject("GET", "/api/v1/pods", status=410, only_continue=True, times=1)
    first = core.list_pod_for_all_namespaces(limit=2)
    with pytest.raises(kubernetes.client.ApiException) as err:
        core.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
    assert _status(err.value)["reason"] == "Expired"


def test_fault_garbage_body_close_and_delay(kube):
    client = kube.client()
    kube.inject("GET", "/api/v1/pods", body=b"<html>proxy error</html>", times=1)
    raw = client.call_api(*client.param_serialize("GET", "/api/v1/pods", auth_settings=["BearerToken"]))
    assert raw.status == 200 and raw.read() == b"<html>proxy error</html>"

    kube.inject("GET", "/api/v1/configmaps", close=True, times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        kubernetes.client.CoreV1Api(client).list_config_map_for_all_namespaces()
    assert kube.requests[-1].status == 0

    kube.inject("GET", "/api/v1/secrets", delay=1.0, times=1)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        kubernetes.client.CoreV1Api(client).list_secret_for_all_namespaces(_request_timeout=0.2)


def test_request_log_records_method_path_and_query(kube, core):
    core.list_pod_for_all_namespaces(limit=5, label_selector="app=a")
    core.create_namespaced_config_map("default", o.configmap("cm"))
    first, second = kube.requests
    assert (first.method, first.path, first.query, first.status) == (
        "GET", "/api/v1/pods", {"limit": "5", "labelSelector": "app=a"}, 200)
    assert [(w.method, w.path, w.status) for w in kube.writes()] == [
        ("POST", "/api/v1/namespaces/default/configmaps", 201)]
    assert second.time >= first.time


def test_objects_can_change_while_a_client_is_listing(kube, core):
    kube.add(*(o.pod(f"p{i}", images=["x"]) for i in range(4)))
    seen = threading.Event()

    def add_during_continue(method, path, query):
        if query.get("continue") and not seen.is_set():
            seen.set()
            kube.add(o.pod("late", images=["x"]))

    kube.api.on_request(add_during_continue)
    first = core.list_namespaced_pod("default", limit=2)
    rest = core.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["p2", "p3"]
    assert "late" in [p.metadata.name for p in core.list_namespaced_pod("default").items]
