"""Reasons are data: every kind renders everywhere a decision is shown, from one fixture.

A new ReasonKind without wording, or a view that falls back to parsing text, fails here.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from kitgc.identity import ManifestKey
from kitgc.model import (
    Action,
    ClusterSnapshot,
    KitDecision,
    Manifest,
    ManifestDecision,
    ObjectRef,
    Plan,
    State,
)
from kitgc.outcome import RunSummary
from kitgc.plan.protect import Subjects
from kitgc.plan.reasons import Reason, ReasonKind, Subject, sort_reasons
from kitgc.plan.text import View, render
from kitgc.present.console import cell_text, kept_category
from kitgc.present.explain import Chains
from kitgc.present.report import build_report
from testbed import planfactory as f

KIT = ObjectRef("IntegrationKit", "kit-a", "camel-k")
POD = ObjectRef("Pod", "orders-x1", "shop")
RS = ObjectRef("ReplicaSet", "orders-7d9", "shop")
INTEGRATION = ObjectRef("Integration", "orders", "shop")
INDEX = ManifestKey("camel-k/camel-k-kit-a", "sha256:" + "a" * 64)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)

# One reason of every kind, with the facts its wording uses.
EVERY: dict[ReasonKind, Reason] = {
    ReasonKind.REFERENCED: Reason(ReasonKind.REFERENCED, (Subject(POD, "spec.containers[app].image", (RS,)),),
                                  tag="3"),
    ReasonKind.KEPT_BY_USER: Reason(ReasonKind.KEPT_BY_USER, message="acme/camel-k-kit-abc*"),
    ReasonKind.KIT_IMAGE: Reason(ReasonKind.KIT_IMAGE, (Subject(KIT, "status.image"),)),
    ReasonKind.BASE_IMAGE: Reason(ReasonKind.BASE_IMAGE, (Subject(KIT, "status.baseImage"),)),
    ReasonKind.ROOT_IMAGE: Reason(ReasonKind.ROOT_IMAGE, (Subject(KIT, "status.rootImage"),)),
    ReasonKind.KIT_BUILDING: Reason(ReasonKind.KIT_BUILDING, (Subject(KIT),), phase="Build Running"),
    ReasonKind.INDEX_CHILD: Reason(ReasonKind.INDEX_CHILD, index=INDEX),
    ReasonKind.READ_PROBLEM: Reason(ReasonKind.READ_PROBLEM, message="HTTP 500", tag="1"),
    ReasonKind.REGISTRY_REFUSES: Reason(ReasonKind.REGISTRY_REFUSES, message="immutable tag", since=SINCE),
    ReasonKind.TOO_YOUNG: Reason(ReasonKind.TOO_YOUNG, min_age=DAY, age=timedelta(hours=3)),
    ReasonKind.OUT_OF_SCOPE: Reason(ReasonKind.OUT_OF_SCOPE, message="acme/app is not a kit repository"),
    ReasonKind.UNREFERENCED: Reason(ReasonKind.UNREFERENCED, (Subject(KIT),), age=3 * DAY),
    ReasonKind.OVER_MAX_DELETIONS: Reason(ReasonKind.OVER_MAX_DELETIONS, age=3 * DAY, limit=500),
    ReasonKind.CHILD_OF_DEFERRED: Reason(ReasonKind.CHILD_OF_DEFERRED, index=INDEX),
    ReasonKind.HELD: Reason(ReasonKind.HELD, age=3 * DAY, message="1 image reference(s) could not be parsed"),
    ReasonKind.HELD_BY_UNIT: Reason(ReasonKind.HELD_BY_UNIT, message="ImageStreamTag shop/camel-k-kit-a:2"),
    ReasonKind.KEPT_WITH_IMAGE: Reason(ReasonKind.KEPT_WITH_IMAGE, index=INDEX, message="signature"),
    ReasonKind.DELETED_WITH_IMAGE: Reason(ReasonKind.DELETED_WITH_IMAGE, index=INDEX, message="sbom"),
    ReasonKind.DEFERRED_WITH_IMAGE: Reason(ReasonKind.DEFERRED_WITH_IMAGE, index=INDEX, message="referrers_index"),
    ReasonKind.AGE_FROM_KIT: Reason(ReasonKind.AGE_FROM_KIT, (Subject(KIT, "metadata.creationTimestamp"),),
                                    since=SINCE),
    ReasonKind.AGE_FROM_STATE: Reason(ReasonKind.AGE_FROM_STATE, since=SINCE),
    ReasonKind.AGE_FROM_THIS_RUN: Reason(ReasonKind.AGE_FROM_THIS_RUN),
    ReasonKind.PRUNE_KITS_OFF: Reason(ReasonKind.PRUNE_KITS_OFF),
    ReasonKind.EXTERNAL_KIT: Reason(ReasonKind.EXTERNAL_KIT),
    ReasonKind.SYNTHETIC_KIT: Reason(ReasonKind.SYNTHETIC_KIT),
    ReasonKind.UNKNOWN_KIT_TYPE: Reason(ReasonKind.UNKNOWN_KIT_TYPE, kit_type="odd"),
    ReasonKind.STILL_BUILDING: Reason(ReasonKind.STILL_BUILDING, phase=""),
    ReasonKind.KIT_TOO_YOUNG: Reason(ReasonKind.KIT_TOO_YOUNG, min_age=DAY, age=timedelta(minutes=5)),
    ReasonKind.LISTED_TWICE: Reason(ReasonKind.LISTED_TWICE),
    ReasonKind.USED: Reason(ReasonKind.USED, (Subject(INTEGRATION),)),
    ReasonKind.IMAGE_REFERENCED: Reason(ReasonKind.IMAGE_REFERENCED, (Subject(POD, "spec.containers[app].image"),)),
    ReasonKind.BASE_OF_KIT: Reason(ReasonKind.BASE_OF_KIT, (Subject(KIT, "status.baseImage"),)),
    ReasonKind.ROOT_OF_KIT: Reason(ReasonKind.ROOT_OF_KIT, (Subject(KIT, "status.rootImage"),)),
    ReasonKind.KIT_HELD: Reason(ReasonKind.KIT_HELD, message="1 image reference(s) could not be parsed"),
    ReasonKind.UNUSED: Reason(ReasonKind.UNUSED, age=9 * DAY),
}

WORDS = {
    ReasonKind.REFERENCED: "tag 3 referenced by Pod shop/orders-x1",
    ReasonKind.KEPT_BY_USER: "kept by KEEP_IMAGES (pattern acme/camel-k-kit-abc*)",
    ReasonKind.KIT_IMAGE: "image of IntegrationKit camel-k/kit-a",
    ReasonKind.BASE_IMAGE: "base image of IntegrationKit camel-k/kit-a",
    ReasonKind.ROOT_IMAGE: "root image of IntegrationKit camel-k/kit-a",
    ReasonKind.KIT_BUILDING: "IntegrationKit camel-k/kit-a is still building (phase Build Running)",
    ReasonKind.INDEX_CHILD: "child of kept index camel-k/camel-k-kit-a@sha256:aaaaaaaaaaaa",
    ReasonKind.READ_PROBLEM: "repository not read completely: HTTP 500 (tag 1)",
    ReasonKind.REGISTRY_REFUSES: "the registry refuses to delete it (immutable tag) since 2026-01-01T00:00:00+00:00; "
                                 "tried again later",
    ReasonKind.TOO_YOUNG: "younger than MIN_AGE 24h (unreferenced for 3h)",
    ReasonKind.OUT_OF_SCOPE: "never touched: acme/app is not a kit repository",
    ReasonKind.UNREFERENCED: "unreferenced for 3d; IntegrationKit camel-k/kit-a is being deleted",
    ReasonKind.OVER_MAX_DELETIONS: "unreferenced for 3d, over MAX_DELETIONS 500, deferred to a later run",
    ReasonKind.CHILD_OF_DEFERRED: "child of deferred index camel-k/camel-k-kit-a@sha256:aaaaaaaaaaaa, deferred with it",
    ReasonKind.HELD: "unreferenced for 3d, not deleted: 1 image reference(s) could not be parsed",
    ReasonKind.HELD_BY_UNIT: ("unreferenced, but goes only with ImageStreamTag shop/camel-k-kit-a:2, whose history "
                              "holds an image that stays"),
    ReasonKind.KEPT_WITH_IMAGE: "signature of kept image camel-k/camel-k-kit-a@sha256:aaaaaaaaaaaa",
    ReasonKind.DELETED_WITH_IMAGE: "SBOM of camel-k/camel-k-kit-a@sha256:aaaaaaaaaaaa, deleted with it",
    ReasonKind.DEFERRED_WITH_IMAGE: ("referrers index of deferred image camel-k/camel-k-kit-a@sha256:aaaaaaaaaaaa, "
                                      "deferred with it"),
    ReasonKind.AGE_FROM_KIT: ("age from the creationTimestamp of IntegrationKit camel-k/kit-a "
                              "(2026-01-01T00:00:00+00:00)"),
    ReasonKind.AGE_FROM_STATE: "age from the first-seen state (2026-01-01T00:00:00+00:00)",
    ReasonKind.AGE_FROM_THIS_RUN: "first seen unreferenced in this run",
    ReasonKind.PRUNE_KITS_OFF: "PRUNE_KITS is off",
    ReasonKind.EXTERNAL_KIT: "external kit",
    ReasonKind.SYNTHETIC_KIT: "synthetic kit",
    ReasonKind.UNKNOWN_KIT_TYPE: "kit type unknown ('odd')",
    ReasonKind.STILL_BUILDING: "still building (phase not set)",
    ReasonKind.KIT_TOO_YOUNG: "younger than MIN_AGE 24h (created 5m ago)",
    ReasonKind.LISTED_TWICE: "listed more than once in the cluster snapshot",
    ReasonKind.USED: "used by Integration shop/orders",
    ReasonKind.IMAGE_REFERENCED: "image referenced by Pod shop/orders-x1",
    ReasonKind.BASE_OF_KIT: "base image of IntegrationKit camel-k/kit-a",
    ReasonKind.ROOT_OF_KIT: "root image of IntegrationKit camel-k/kit-a",
    ReasonKind.KIT_HELD: "not deleted: 1 image reference(s) could not be parsed",
    ReasonKind.UNUSED: "unused for 9d: no Integration uses it, no kit builds on it",
}


def test_the_fixture_holds_every_reason_kind() -> None:
    assert set(EVERY) == set(ReasonKind) == set(WORDS)


@pytest.mark.parametrize("kind", list(ReasonKind), ids=str)
def test_every_reason_kind_renders_in_plain_text_console_explain_and_report(kind: ReasonKind) -> None:
    reason = EVERY[kind]
    assert str(reason) == render(reason) == WORDS[kind]
    # The console table: the row's own kit is "its IntegrationKit", everything else verbatim.
    cell = cell_text(reason, "camel-k/camel-k-kit-a")
    assert cell == WORDS[kind].replace("IntegrationKit camel-k/kit-a", "its IntegrationKit")
    # explain: the sentence starts every chain.
    plan = Plan((), (KitDecision(f.kit("kit-a"), Action.KEEP, EVERY[ReasonKind.USED]),), State())
    chains = Chains(plan, ClusterSnapshot((), (), ())).expand(reason)
    assert chains and all(c.startswith(WORDS[kind]) for c in chains)
    # The JSON report: kind and text, and the subjects as typed references.
    m = Manifest("camel-k/camel-k-kit-a", "sha256:" + "b" * 64, "application/vnd.oci.image.manifest.v1+json")
    report = build_report(RunSummary("success", 0, True, 0.0, 0.1),
                          Plan((ManifestDecision(m, Action.KEEP, (reason,)),), (), State()), None)
    (why,) = json.loads(json.dumps(report["manifests"][0]["why"]))
    assert (why["kind"], why["text"]) == (kind.value, WORDS[kind])
    assert [(s["kind"], s["namespace"], s["name"]) for s in why.get("subjects", [])] == [
        (s.ref.kind, s.ref.namespace, s.ref.name) for s in reason.subjects]


def test_a_subject_keeps_its_field_and_owner_chain_in_the_report() -> None:
    (subject,) = EVERY[ReasonKind.REFERENCED].as_dict()["subjects"]
    assert subject["field"] == "spec.containers[app].image"
    assert subject["owners"] == [{"kind": "ReplicaSet", "namespace": "shop", "name": "orders-7d9"}]


def test_kept_categories_come_from_the_kind_not_the_words() -> None:
    """A reason reworded tomorrow still counts under the same heading."""
    assert kept_category(EVERY[ReasonKind.REFERENCED]) == ("referenced", "referenced")
    assert kept_category(EVERY[ReasonKind.KIT_BUILDING]) == ("of a kit still building", "of kits still building")
    assert kept_category(EVERY[ReasonKind.KEPT_BY_USER]) == ("kept by KEEP_IMAGES", "kept by KEEP_IMAGES")
    assert kept_category(EVERY[ReasonKind.OUT_OF_SCOPE]) == ("kept for another reason", "kept for other reasons")


def test_headline_order_is_references_then_kit_images_then_building_then_children_then_problems() -> None:
    shuffled = [EVERY[k] for k in (ReasonKind.READ_PROBLEM, ReasonKind.INDEX_CHILD, ReasonKind.KIT_BUILDING,
                                   ReasonKind.KIT_IMAGE, ReasonKind.REFERENCED)]
    assert [r.kind for r in sort_reasons(shuffled)] == [
        ReasonKind.REFERENCED, ReasonKind.KIT_IMAGE, ReasonKind.KIT_BUILDING, ReasonKind.INDEX_CHILD,
        ReasonKind.READ_PROBLEM]


def test_owner_chains_stop_at_a_loop_and_at_the_depth_limit() -> None:
    a, b = ObjectRef("ReplicaSet", "a", "ns"), ObjectRef("Deployment", "b", "ns")
    assert Subjects({a: b, b: a}).chain(a) == (b,)
    refs = [ObjectRef("X", str(i), "ns") for i in range(20)]
    long_chain = Subjects(dict(itertools.pairwise(refs))).chain(refs[0])
    assert 0 < len(long_chain) < 20


def test_many_subjects_read_as_a_short_list_but_all_are_kept_as_data() -> None:
    users = tuple(Subject(ObjectRef("Integration", f"i{n}", "shop")) for n in range(5))
    reason = Reason(ReasonKind.USED, users)
    assert render(reason) == "used by Integration shop/i0, Integration shop/i1, Integration shop/i2 and 2 more"
    assert len(reason.as_dict()["subjects"]) == 5
    assert render(reason, View(friendly_kinds=True)) == render(reason)
