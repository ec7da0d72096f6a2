"""References on OpenShift: DeploymentConfigs, BuildConfigs, ImageStreams and trigger annotations.

Facts from openshift/api (``apps/v1``, ``build/v1``, ``image/v1`` ``types.go``) and
openshift/library-go (``imageutil.SplitImageStreamTag``):

- DeploymentConfig: ``spec.template`` is a PodTemplateSpec; ``spec.triggers[].imageChangeParams.from``
  names an ImageStreamTag ``<stream>:<tag>``; a blank namespace is the DeploymentConfig's.
- BuildConfig: ``spec.strategy.{sourceStrategy,dockerStrategy,customStrategy}.from`` and
  ``spec.source.images[].from`` (DockerImage, ImageStreamTag or ImageStreamImage),
  ``spec.triggers[].imageChange.from`` (an ImageStreamTag), ``spec.output.to`` (ImageStreamTag or
  DockerImage); a blank namespace is the BuildConfig's.
- ImageStream: ``spec.tags[].from`` (DockerImage, ImageStreamImage, or an ImageStreamTag of the same
  stream: ``<tag>`` or ``<stream>:<tag>``); ``spec.lookupPolicy.local`` (see :mod:`kitgc.cluster.local_lookup`).
- The annotation ``image.openshift.io/triggers`` (openshift/origin ``pkg/image/apis/image/v1/trigger``),
  on any kind: a JSON list of ``{"from": {"kind", "name", "namespace"}, "fieldPath", "paused"}``.

Decisions, all on the side of keeping:

- An ImageStreamTag ``<stream>:<tag>`` in namespace ``ns`` is the image reference
  ``image-registry.openshift-image-registry.svc:5000/<ns>/<stream>:<tag>`` (a name without a tag is
  ``:latest``, as OpenShift reads it); an ImageStreamImage ``<stream>@<digest>`` is ``…/<ns>/<stream>@<digest>``.
  The planner matches repositories by path, so the host only says where such an image lives.
- ``spec.output.to`` counts: a BuildConfig protects what it builds on and the tag it pushes to.
- Paused triggers count (they still name the image their object runs).
- A ``from`` of any other kind, without a name, not an object; a triggers annotation that is not
  JSON or not a list of such entries: an UnparsableReference, and the run deletes nothing.
- An empty object reference (``from: {}``) and an empty annotation name nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kitgc.cluster import sources as S
from kitgc.cluster.found import Found, begin, pod_spec
from kitgc.cluster.objects import object_ref, source_kind
from kitgc.cluster.raw import get, items
from kitgc.imageref import ImageRef, InvalidReference, parse
from kitgc.model import ObjectRef, Reference, UnparsableReference

INTEGRATED_REGISTRY = "image-registry.openshift-image-registry.svc:5000"
TRIGGERS_ANNOTATION = "image.openshift.io/triggers"
_STRATEGIES = ("sourceStrategy", "dockerStrategy", "customStrategy")


def _bad(found: Found, raw: Any, src: ObjectRef, path: str, error: str) -> None:
    found.unparsable.append(UnparsableReference(raw if isinstance(raw, str) else repr(raw), src, path, error))


def _stream_image(ns: str, stream: str, tail: str) -> ImageRef:
    """``<integrated registry>/<ns>/<stream><tail>``, checked like any reference."""
    if not ns or not stream or any(c in stream for c in "/:@"):
        raise InvalidReference(f"no image stream in namespace {ns!r} named {stream!r}")
    return parse(f"{INTEGRATED_REGISTRY}/{ns}/{stream}{tail}")


def _from_stream(kind: str, name: str, ns: str, own_stream: str | None) -> ImageRef:
    """The image an ImageStreamTag or ImageStreamImage ``name`` stands for."""
    if kind == "ImageStreamImage":
        stream, at, digest = name.partition("@")
        if "/" in stream:  # "<namespace>/<stream>@<id>" is read too
            ns, _, stream = stream.partition("/")
        if not at:
            raise InvalidReference(f"ImageStreamImage {name!r} is not <stream>@<digest>")
        return _stream_image(ns, stream, f"@{digest}")
    if "@" in name:
        raise InvalidReference(f"ImageStreamTag {name!r} names an image, not a tag")
    stream, colon, tag = name.partition(":")
    if not colon and own_stream is not None:  # in an ImageStream, "<tag>" is a tag of that stream
        stream, tag = own_stream, name
    return _stream_image(ns, stream, f":{tag or 'latest'}")


def object_reference(found: Found, ref: Any, src: ObjectRef, path: str, own_stream: str | None = None) -> None:
    """Record the image an ObjectReference (``kind``, ``name``, ``namespace``) at ``path`` names.

    ``own_stream``: the ImageStream whose ``spec.tags`` hold ``ref`` (a bare ``<tag>`` is one of its tags).
    """
    if ref is None or ref == {}:
        return
    if not isinstance(ref, dict):
        _bad(found, ref, src, path, f"not an object reference: {type(ref).__name__}")
        return
    kind, name, ns = ref.get("kind"), ref.get("name"), ref.get("namespace") or src.namespace or ""
    if kind not in ("DockerImage", "ImageStreamTag", "ImageStreamImage"):
        _bad(found, name, src, path, f"unknown kind {kind!r}: expected DockerImage, ImageStreamTag or ImageStreamImage")
        return
    if not isinstance(name, str) or not name or not isinstance(ns, str):
        _bad(found, name, src, f"{path}.name", f"{kind} without a name (or with a namespace that is no string)")
        return
    if kind == "DockerImage":
        found.image(name, src, f"{path}.name")
        return
    try:
        image = _from_stream(kind, name, ns, own_stream)
    except InvalidReference as exc:
        _bad(found, name, src, f"{path}.name", str(exc))
        return
    found.references.append(Reference(image, src, f"{path}.name"))


def deployment_config(obj: dict[str, Any]) -> Found:
    """The pod template, and the ImageStreamTags its image change triggers follow."""
    found, src = begin(source_kind(S.DEPLOYMENT_CONFIGS), obj)
    pod_spec(found, get(obj, "spec", "template", "spec"), src, "spec.template.spec")
    for i, trigger in enumerate(items(get(obj, "spec", "triggers"))):
        object_reference(found, get(trigger, "imageChangeParams", "from"), src,
                         f"spec.triggers[{i}].imageChangeParams.from")
    return found


def build_config(obj: dict[str, Any]) -> Found:
    """What a BuildConfig builds on, copies from, is triggered by, and pushes to."""
    found, src = begin(source_kind(S.BUILD_CONFIGS), obj)
    for strategy in _STRATEGIES:
        object_reference(found, get(obj, "spec", "strategy", strategy, "from"), src, f"spec.strategy.{strategy}.from")
    for i, image in enumerate(items(get(obj, "spec", "source", "images"))):
        object_reference(found, image.get("from"), src, f"spec.source.images[{i}].from")
    for i, trigger in enumerate(items(get(obj, "spec", "triggers"))):
        object_reference(found, get(trigger, "imageChange", "from"), src, f"spec.triggers[{i}].imageChange.from")
    object_reference(found, get(obj, "spec", "output", "to"), src, "spec.output.to")
    return found


def image_stream(obj: dict[str, Any]) -> Found:
    """What the stream's tags track, and whether bare names in its namespace may resolve through it."""
    found, src = begin(source_kind(S.IMAGE_STREAMS), obj)
    for i, tag in enumerate(items(get(obj, "spec", "tags"))):
        name = tag.get("name")
        where = f"spec.tags[{name if isinstance(name, str) and name else i}].from"
        object_reference(found, tag.get("from"), src, where, own_stream=src.name)
    if get(obj, "spec", "lookupPolicy", "local") is True and src.namespace and src.name:
        found.local_streams.add((src.namespace, src.name))
    return found


def triggers(found: Found, source: S.Source, obj: dict[str, Any]) -> None:
    """Every ``from`` of the ``image.openshift.io/triggers`` annotation, whatever kind ``obj`` is."""
    value = get(obj, "metadata", "annotations", TRIGGERS_ANNOTATION)
    if value is None or value == "":
        return
    src = object_ref(source_kind(source), obj)
    path = f"metadata.annotations[{TRIGGERS_ANNOTATION}]"
    try:
        entries = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        entries = None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("from"), dict)
                                                for e in entries):
        _bad(found, value, src, path, 'not a JSON list of {"from": {"kind", "name", "namespace"}, "fieldPath"}')
        return
    for i, entry in enumerate(entries):
        object_reference(found, entry["from"], src, f"{path}[{i}].from")


EXTRACTORS: dict[S.Source, Callable[[dict[str, Any]], Found]] = {
    S.DEPLOYMENT_CONFIGS: deployment_config,
    S.BUILD_CONFIGS: build_config,
    S.IMAGE_STREAMS: image_stream,
}
