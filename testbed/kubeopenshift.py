"""What the emulator serves of OpenShift beyond stored objects: ImageStreamTags and ImageStream defaults.

ImageStreams (``image.openshift.io/v1``), Images, DeploymentConfigs and BuildConfigs are plain
stored resources (:data:`testbed.kubestore.RESOURCES`), served only when a test turns the
OpenShift groups on (``KubeAPI(openshift=True)``). ImageStreamTags are not stored: as in
openshift-apiserver (pkg/image/apiserver/registry/imagestreamtag/rest.go) they are a view of an
ImageStream's tag, named ``<stream>:<tag>``:

- GET answers the tag's current image (``status.tags[].items[0]``) with the Image object
  embedded; 404 when the stream, the tag (or an image for it) or the Image object is missing,
  each with the NotFound ``Status`` the real server gives;
- DELETE removes the tag from the stream's ``spec.tags`` and ``status.tags`` (the stream and the
  Images stay: history is the pruner's business) and answers a ``Success`` Status;
- LIST gives one ImageStreamTag per status tag, with only the image's name and reference, and,
  like the real server, hands ``limit`` to the stream list and drops its continue token: a
  limited list silently covers only the first ``limit`` streams.

Creating or updating ImageStreamTags (tagging) is not emulated: 405.
"""

from __future__ import annotations

import copy
from typing import Any

from testbed.kubestore import IMAGE, ApiError, Resource, Store, field_selector, label_selector, not_found

REGISTRY_HOST = "image-registry.openshift-image-registry.svc:5000"
IMAGE_API = f"{IMAGE}/v1"
# Discovery verbs where they differ from the emulator's default (what openshift-apiserver advertises).
VERBS = {(IMAGE, "imagestreamtags"): ["create", "delete", "get", "list", "patch", "update"]}
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

Obj = dict[str, Any]


def _res(store: Store, plural: str) -> Resource:
    return next(r for r in store.resources if r.group == IMAGE and r.plural == plural)


def _split(name: str) -> tuple[str, str]:
    stream, sep, tag = name.partition(":")
    if not (sep and stream and tag) or ":" in tag or "@" in name:
        raise ApiError(400, "BadRequest", "ImageStreamTags must be retrieved with <name>:<tag>")
    return stream, tag


def _named(entries: list[Obj] | None, field: str, tag: str) -> Obj | None:
    return next((e for e in entries or [] if e.get(field) == tag), None)


def current_event(stream: Obj, tag: str) -> Obj | None:
    """``items[0]`` of the tag's status history (the current image), if it has one."""
    history = _named((stream.get("status") or {}).get("tags"), "tag", tag)
    items = (history or {}).get("items") or []
    return items[0] if items and items[0].get("image") else None


def image_stream_tag(stream: Obj, tag: str, image: Obj | None) -> Obj:
    """The ImageStreamTag ``<stream>:<tag>`` as openshift-apiserver builds it (newISTag)."""
    event = current_event(stream, tag)
    assert event is not None
    meta, status = stream["metadata"], stream.get("status") or {}
    spec = _named((stream.get("spec") or {}).get("tags"), "name", tag)
    annotations = dict((spec or {}).get("annotations") or {})
    img = copy.deepcopy(image) if image else {"metadata": {"name": event["image"]}}
    for key in ("apiVersion", "kind", "dockerImageManifest", "dockerImageConfig"):
        img.pop(key, None)
    if annotations and image:
        img["metadata"]["annotations"] = {**(img["metadata"].get("annotations") or {}), **annotations}
    local = ((spec or {}).get("referencePolicy") or {}).get("type") == "Local"
    img["dockerImageReference"] = (f"{status.get('dockerImageRepository')}@{event['image']}" if local
                                   else event.get("dockerImageReference", ""))
    out_meta: Obj = {"name": f"{meta['name']}:{tag}", "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                     "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": event.get("created")}
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    if annotations:
        out_meta["annotations"] = annotations
    out: Obj = {"kind": "ImageStreamTag", "apiVersion": IMAGE_API, "metadata": out_meta, "tag": copy.deepcopy(spec),
                "generation": event.get("generation", 0),
                "lookupPolicy": dict((stream.get("spec") or {}).get("lookupPolicy") or {"local": False}), "image": img}
    conditions = (_named(status.get("tags"), "tag", tag) or {}).get("conditions")
    if conditions:
        out["conditions"] = copy.deepcopy(conditions)
    return out


def get_tag(store: Store, ns: str, name: str) -> Obj:
    stream_name, tag = _split(name)
    with store.lock:
        stream = store.get(_res(store, "imagestreams"), ns, stream_name)
        event = current_event(stream, tag)
        if event is None:
            raise not_found(_res(store, "imagestreamtags"), name)
        return image_stream_tag(stream, tag, store.get(_res(store, "images"), None, event["image"]))


def delete_tag(store: Store, ns: str, name: str) -> Obj:
    stream_name, tag = _split(name)
    streams = _res(store, "imagestreams")
    with store.lock:
        stream = store.get(streams, ns, stream_name)
        spec, status = dict(stream.get("spec") or {}), dict(stream.get("status") or {})
        spec_tags = [t for t in spec.get("tags") or [] if t.get("name") != tag]
        status_tags = [t for t in status.get("tags") or [] if t.get("tag") != tag]
        if len(spec_tags) == len(spec.get("tags") or []) and len(status_tags) == len(status.get("tags") or []):
            raise not_found(_res(store, "imagestreamtags"), name)
        meta = {k: v for k, v in stream["metadata"].items() if k != "resourceVersion"}
        if len(spec_tags) != len(spec.get("tags") or []):
            meta["generation"] = int(meta.get("generation") or 1) + 1
        for part, key, tags in ((spec, "tags", spec_tags), (status, "tags", status_tags)):
            part.pop(key, None)
            if tags:
                part[key] = tags
        store.update(streams, ns, stream_name, {**stream, "metadata": meta, "spec": spec, "status": status})
    return dict(SUCCESS)


def list_tags(store: Store, ns: str | None, query: dict[str, str]) -> Obj:
    labels = label_selector(query.get("labelSelector", ""))
    fields = field_selector(query.get("fieldSelector", ""))
    streams = [s for s in store.objects(_res(store, "imagestreams"))
               if (ns is None or s["metadata"].get("namespace") == ns) and labels(s["metadata"].get("labels") or {})]
    limit = int(query.get("limit") or 0)
    items = []
    for stream in streams[:limit] if limit else streams:
        for tag in sorted(t.get("tag", "") for t in (stream.get("status") or {}).get("tags") or []):
            if current_event(stream, tag) is not None:
                items.append(image_stream_tag(stream, tag, None))
    return {"kind": "ImageStreamTagList", "apiVersion": IMAGE_API, "metadata": {},
            "items": [i for i in items if fields(i)]}


def image_stream_tags(store: Store, method: str, ns: str | None, name: str | None, query: dict[str, str]) -> Obj:
    """Answer a request on ``imagestreamtags`` (namespace ``ns``, or all namespaces for a list)."""
    if name is None and method == "GET":
        return list_tags(store, ns, query)
    if name is not None and ns and method == "GET":
        return get_tag(store, ns, name)
    if name is not None and ns and method == "DELETE":
        return delete_tag(store, ns, name)
    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def prepare_create(res: Resource, obj: Obj, ns: str | None) -> Obj:
    """What the server sets on create: an ImageStream's ``status.dockerImageRepository``."""
    name = (obj.get("metadata") or {}).get("name")
    if res.group != IMAGE or res.plural != "imagestreams" or not name:
        return obj
    namespace = ns or obj["metadata"].get("namespace") or "default"
    return {**obj, "status": {"dockerImageRepository": f"{REGISTRY_HOST}/{namespace}/{name}"}}
