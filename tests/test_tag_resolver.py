"""The inventory's tag index: what a reference by tag protects. It stores a bare digest per
tag to save memory at 100,000 tags; these tests keep it answering as a set of digests would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_tag_several_repositories_share_stands_in_each_for_that_repository_s_own_digests() -> None:
    resolver = TagResolver([manifest(A, 1, "latest"), manifest(B, 2, "latest"), manifest(B, 3, "latest"),
                            manifest(A, 1, "latest")])
    assert resolver.digests(image(A)) == (digest(1),)
    assert resolver.digests(image(B)) == tuple(sorted({digest(2), digest(3)}))
    assert resolver.digests(image("camel-k/camel-k-kit-c")) == ()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([A, B, "other/app"]), st.integers(0, 4),
                          st.lists(st.sampled_from(["1", "2", "latest"]), max_size=3)), max_size=12),
       st.sampled_from([A, B, "other/app", "camel-k/camel-k-kit-c"]), st.sampled_from(["1", "2", "latest", "9"]))
def test_a_tag_stands_for_exactly_the_digests_its_repository_lists_it_on(
        listed: list[tuple[str, int, list[str]]], repository: str, tag: str) -> None:
    """Against the plainest model: the set of digests that list ``tag`` in ``repository``."""
    resolver = TagResolver([manifest(r, label, *tags) for r, label, tags in listed])
    expected = sorted({digest(label) for r, label, tags in listed if r == repository and tag in tags})
    assert list(resolver.digests(image(repository, tag=tag))) == expected
