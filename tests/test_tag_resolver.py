"""The inventory's tag index: what a reference by tag protects. It stores a bare digest per
tag to save memory at 100,000 tags; these tests keep it answering as a set of digests would."""

from __future__ import annotations

from kitgc.plan.protect import TagResolver
from testbed.planfactory import digest, image, manifest

A, B = "camel-k/camel-k-kit-a", "camel-k/camel-k-kit-b"


def test_a_tag_stands_for_the_digest_it_points_at_in_its_own_repository() -> None:
    resolver = TagResolver([manifest(A, 1, "1", "latest"), manifest(B, 2, "1")])
    assert resolver.digests(image(A, tag="1")) == (digest(1),)
    assert resolver.digests(image(A)) == (digest(1),), "no tag and no digest pulls latest"
    assert resolver.digests(image(B, tag="1")) == (digest(2),)


def test_a_tag_listed_on_two_digests_stands_for_both() -> None:
    resolver = TagResolver([manifest(A, 1, "1"), manifest(A, 2, "1"), manifest(A, 1, "1"), manifest(A, 3, "1")])
    assert resolver.digests(image(A, tag="1")) == tuple(sorted({digest(1), digest(2), digest(3)}))


def test_a_digest_stands_for_itself_and_an_unknown_tag_for_nothing() -> None:
    resolver = TagResolver([manifest(A, 1, "1")])
    assert resolver.digests(image(A, 9, tag="1")) == (digest(9),)
    assert resolver.digests(image(A, tag="2")) == ()
    assert resolver.digests(image(B, tag="1")) == ()
