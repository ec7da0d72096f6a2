"""Scope follows the kits: which repositories a run may ever touch, and what it remembers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kitgc.model import Action, State
from kitgc.plan.unowned import looks_shared, unowned_repositories
from kitgc.scope import Scope, in_scope
from kitgc.state import decode, encode
from testbed import planfactory as f
from testbed.planfactory import DAY, HOUR, NOW


@pytest.mark.parametrize(("repository", "kits", "expected"), [
    ("acme/camel-k-kit-abc", (), True),
    ("acme/camel-k-ctx-abc", (), True),  # Camel K 0.x contexts
    ("acme/camel-k-kit-", (), False),  # a prefix alone names no kit
    ("acme/camel-k-my-kit", ("camel-k-my-kit",), True),  # kamel kit create my-kit
    ("acme/camel-k-my-app", (), False),  # looks like a kit's, no kit ever seen
    ("acme/team/camel-k-kit-abc", (), False),  # one segment below the organization only
    ("other/camel-k-kit-abc", (), False),
    ("acme/my-app", ("my-app",), False),  # kit repositories are camel-k-<name>
])
def test_scope_rules(repository: str, kits: tuple[str, ...], expected: bool) -> None:
    assert in_scope(repository, ("acme",), kits) is expected
    assert (repository in Scope(("acme",), frozenset(kits))) is expected


def test_the_planner_never_decides_a_lookalike_without_a_kit() -> None:
    app = f.manifest("camel-k/camel-k-my-app", "a", "1")
    user = f.manifest("camel-k/camel-k-my-kit", "u", "1")
    pol = replace(f.policy(min_age=0 * HOUR), kit_repositories=frozenset({"camel-k-my-kit"}))
    plan = f.run(f.inventory(app, user), f.cluster(), pol)
    assert [d.manifest.repository for d in plan.manifests] == ["camel-k/camel-k-my-kit"]


def test_kits_are_remembered_while_their_repository_holds_images() -> None:
    kept = f.manifest(f.repo("kit-a"), "a1", "1")
    gone = f.manifest(f.repo("kit-b"), "b1", "1")
    refs = [f.ref(f.image(kept.repository, "a1"))]
    kits = [f.kit("kit-a"), f.kit("kit-b", age=9 * DAY)]
    plan = f.run(f.inventory(kept, gone), f.cluster(refs, kits), f.policy(min_age=0 * HOUR),
                 State(kits_seen=frozenset({"camel-k-kit-old"})))
    assert f.action(plan, gone) is Action.DELETE
    # kit-a's repository keeps an image; kit-b's is emptied; kit-old's repository holds nothing any more
    assert plan.state.kits_seen == frozenset({"camel-k-kit-a"})


def test_remembered_kits_survive_the_configmap_round_trip() -> None:
    state = State({f"{f.repo('kit-a')}@sha256:{'a' * 24}": NOW}, kits_seen=frozenset({"camel-k-my-kit"}))
    assert decode(encode(state)).kits_seen == frozenset({"camel-k-my-kit"})


def test_repositories_with_images_and_no_kit_ever_seen_are_unowned() -> None:
    ms = [f.manifest(f.repo(f"kit-{n}"), n, "1") for n in "abcdefg"]
    inv = f.inventory(*ms)
    unowned = unowned_repositories(inv, [f.kit("kit-a")], frozenset({"camel-k-kit-b"}))
    assert unowned == tuple(f.repo(f"kit-{n}") for n in "cdefg")
    assert looks_shared(unowned, inv)
    assert not looks_shared(unowned[:2], inv)  # a couple of leftovers are no sign of sharing
