"""OpenShift checks: the ImageStream API a run deletes through, and the pruner that frees storage.

On OpenShift (``REGISTRY_KIND=openshift``, or wherever ``image.openshift.io`` is served) kit
images are ImageStreams; a run deletes ImageStreamTags and ImageStreams through the
Kubernetes API, so those are the permissions that matter. Deleting them does not free a byte
of storage: OpenShift's ImagePruner
(``imagepruners.imageregistry.operator.openshift.io/cluster``, daily ``0 0 * * *`` by
default) does, later. An absent or suspended pruner does not stop a deleting run, so it is
reported as unknown (``ok: null``) with what it means, never as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

from kitgc.cluster import sources as S
from kitgc.cluster.reader import ClusterReader
from kitgc.doctor.access import review
from kitgc.doctor.checks import Check
from kitgc.doctor.cluster import first_page
from kitgc.errors import SafetyAbort
from kitgc.kube.http import TransportError

PRUNER_GROUP = "imageregistry.operator.openshift.io"
PRUNER_PATH = f"/apis/{PRUNER_GROUP}/v1/imagepruners/cluster"
PRUNER_DEFAULT_SCHEDULE = "0 0 * * *"  # what the operator uses when spec.schedule is empty
NOT_RECLAIMED = "storage of deleted images is not reclaimed until the ImagePruner runs"
# What a run does to ImageStreams (kitgc.stores.openshift): list them, delete tags and streams.
NEEDED = (("list", "imagestreams"), ("delete", "imagestreams"), ("delete", "imagestreamtags"))


def check_openshift(reader: ClusterReader, kind: str) -> Iterator[Check]:
    """``openshift_imagestreams`` and ``openshift_image_pruner``, when OpenShift is in play."""
    try:
        served = reader.served(S.IMAGE_STREAMS)
    except SafetyAbort as exc:
        yield Check("openshift_imagestreams", False if kind == "openshift" else None, str(exc))
        return
    if not served:
        if kind == "openshift":
            yield Check("openshift_imagestreams", False, f"{S.IMAGE_STREAMS} is not served, but REGISTRY_KIND "
                                                         "is openshift: a run cannot read kit images")
        return
    yield imagestreams(reader, kind)
    yield image_pruner(reader)


def imagestreams(reader: ClusterReader, kind: str) -> Check:
    """The ImageStream API is served, listable, and (for kind openshift) its deletes are allowed."""
    problem = first_page(reader.http, S.IMAGE_STREAMS)
    if problem is not None:
        return Check("openshift_imagestreams", False, f"{S.IMAGE_STREAMS}: {problem}")
    denied, unknown = [], []
    for verb, plural in NEEDED:
        answer = review(reader.http, verb, S.OPENSHIFT_IMAGE, plural)
        if answer.allowed is False:
            denied.append(f"{verb} {plural}")
        elif answer.allowed is None:
            unknown.append(f"{verb} {plural}")
    if denied and kind == "openshift":
        return Check("openshift_imagestreams", False, f"served, but RBAC denies {', '.join(denied)} cluster-wide: "
                                                      "a deleting run would fail")
    if denied:
        return Check("openshift_imagestreams", True, f"served and listable; {', '.join(denied)} denied, not needed "
                                                     f"(REGISTRY_KIND is {kind})")
    if unknown:
        return Check("openshift_imagestreams", None, f"served and listable; {', '.join(unknown)}: unknown "
                                                     "(SelfSubjectAccessReview unavailable)")
    return Check("openshift_imagestreams", True, "served; list and delete allowed for imagestreams and "
                                                 "imagestreamtags cluster-wide")


def image_pruner(reader: ClusterReader) -> Check:
    """The ImagePruner ``cluster``: present and running on a schedule, or what its absence means."""
    try:
        resp = reader.http.request("GET", PRUNER_PATH)
    except TransportError as exc:
        return Check("openshift_image_pruner", None, f"cannot read imagepruners/cluster ({exc}); {NOT_RECLAIMED}")
    if resp.status == 404:
        return Check("openshift_image_pruner", None, f"imagepruners/cluster is absent: {NOT_RECLAIMED}")
    if not resp.ok:
        return Check("openshift_image_pruner", None,
                     f"cannot read imagepruners/cluster ({resp.status_message()}); {NOT_RECLAIMED}")
    try:
        spec = resp.json().get("spec") or {}
    except (ValueError, AttributeError):
        return Check("openshift_image_pruner", None, f"imagepruners/cluster is not an object; {NOT_RECLAIMED}")
    given = spec.get("schedule") if isinstance(spec, dict) else None
    schedule = (given.strip() if isinstance(given, str) else "") or PRUNER_DEFAULT_SCHEDULE
    if isinstance(spec, dict) and spec.get("suspend") is True:
        return Check("openshift_image_pruner", None, f"imagepruners/cluster is suspended (schedule {schedule}): "
                                                     f"{NOT_RECLAIMED}")
    return Check("openshift_image_pruner", True, f"runs {schedule}")


__all__ = ["NOT_RECLAIMED", "PRUNER_GROUP", "check_openshift"]
