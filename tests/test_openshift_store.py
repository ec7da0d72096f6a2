"""The openshift store's pure parts: reading tag history, choosing the store, tags that go whole."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kitgc.model import Action
from kitgc.plan.reasons import ReasonKind
from kitgc.stores.choose import choose_kind
from kitgc.stores.openshift import names_integrated_registry, tag_history
from testbed import planfactory as f
from testbed.planfactory import DAY, HOUR

A, B, C = (f.digest(x) for x in "abc")


def _stream(tags: object) -> dict[str, object]:
    return {"metadata": {"name": "s", "namespace": "ns"}, "status": {"tags": tags}}


def test_tag_history_lists_each_tags_images_current_first() -> None:
    stream = _stream([{"tag": "2", "items": [{"image": A}, {"image": B}]}, {"tag": "1", "items": [{"image": B}]}])
    assert tag_history(stream) == {"2": [A, B], "1": [B]}
    assert tag_history(_stream(None)) == {}


@pytest.mark.parametrize("tags", ["x", [{"items": []}], [{"tag": "1", "items": [{"created": "x"}]}],
                                  [{"tag": "1", "items": "x"}]])
def test_a_tag_history_that_cannot_be_read_is_not_guessed(tags: object) -> None:
    assert tag_history(_stream(tags)) is None


@pytest.mark.parametrize(("setting", "host", "kind"), [
    ("auto", "image-registry.openshift-image-registry.svc:5000", "openshift"),
    ("auto", "image-registry.openshift-image-registry.svc", "openshift"),
    ("auto", "default-route-openshift-image-registry.apps.example.com", "openshift"),
    ("auto", "registry.example.com:5000", "distribution"),
    ("openshift", "registry.example.com", "openshift"),
    ("harbor", "image-registry.openshift-image-registry.svc:5000", "harbor"),  # a setting wins
])
def test_the_store_is_chosen_by_setting_then_by_host(setting: str, host: str, kind: str) -> None:
    assert choose_kind(setting, host)[0] == kind


def test_the_route_prefix_must_start_the_host() -> None:
    assert not names_integrated_registry("x.default-route-openshift-image-registry.apps.example.com")


def test_a_tag_whose_history_holds_an_image_that_stays_goes_whole_or_not_at_all() -> None:
    repo = f.repo("kit-s")
    current, old, lone = f.manifest(repo, "a", "2"), f.manifest(repo, "b"), f.manifest(repo, "c", "1")
    unit = ("ImageStreamTag camel-k/camel-k-kit-s:2", (current.key, old.key))
    inv = replace(f.inventory(current, old, lone), units=(unit,))
    held = f.run(inv, f.cluster([f.ref(f.image(repo, "a"))]), f.policy(min_age=0 * HOUR))
    assert f.action(held, current) is Action.KEEP
    assert f.action(held, old) is Action.KEEP  # would go alone, but only goes with tag 2
    assert f.decision(held, old).why[0].kind is ReasonKind.HELD_BY_UNIT
    assert "ImageStreamTag camel-k/camel-k-kit-s:2" in f.decision(held, old).reason
    assert f.action(held, lone) is Action.DELETE
    free = f.run(inv, f.cluster(), f.policy(min_age=0 * HOUR),
                 f.seen((current, DAY), (old, DAY), (lone, DAY)))
    assert {f.action(free, m) for m in (current, old, lone)} == {Action.DELETE}
