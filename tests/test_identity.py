"""Identities every stage agrees on: their spelling, their order, and what counts as a digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kitgc.identity import (
    KIT_REPOSITORY_PREFIX,
    KitKey,
    ManifestKey,
    is_digest,
    kit_name_of_repository,
    kit_repository_name,
    last_segment,
)

HEX = "0123456789abcdef" * 4  # 64 hex digits
SHA = f"sha256:{HEX}"


def test_manifest_key_is_spelled_repository_at_digest() -> None:
    key = ManifestKey("team/camel-k/camel-k-kit-a", SHA)
    assert str(key) == f"team/camel-k/camel-k-kit-a@{SHA}"
    assert (key.repository, key.digest) == ("team/camel-k/camel-k-kit-a", SHA)


def test_kit_key_is_spelled_namespace_slash_name() -> None:
    assert str(KitKey("camel-k", "kit-abc")) == "camel-k/kit-abc"


def test_keys_order_by_repository_then_digest_and_hash_as_tuples() -> None:
    keys = [ManifestKey("b", "sha256:1"), ManifestKey("a", "sha256:2"), ManifestKey("a", "sha256:1")]
    assert sorted(keys) == [ManifestKey("a", "sha256:1"), ManifestKey("a", "sha256:2"), ManifestKey("b", "sha256:1")]
    assert sorted([KitKey("ns", "kit-b"), KitKey("a", "kit-z"), KitKey("ns", "kit-a")]) == [
        KitKey("a", "kit-z"), KitKey("ns", "kit-a"), KitKey("ns", "kit-b")]
    assert ManifestKey("a", SHA) == ("a", SHA)
    assert len({ManifestKey("a", SHA), ManifestKey("a", SHA), ManifestKey("b", SHA)}) == 2


def test_child_is_the_key_of_another_digest_in_the_same_repository() -> None:
    index = ManifestKey("org/camel-k-kit-a", "sha256:" + "1" * 64)
    assert index.child(SHA) == ManifestKey("org/camel-k-kit-a", SHA)
    assert index == ManifestKey("org/camel-k-kit-a", "sha256:" + "1" * 64), "the index key is unchanged"


@pytest.mark.parametrize(
    "reference",
    [SHA, "sha512:" + HEX * 2, "sha256:" + "a" * 32, "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
     "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"],
    ids=["sha256", "sha512", "32-digits", "b64u", "separators"],
)
def test_digests_are_recognised(reference: str) -> None:
    assert is_digest(reference)


@pytest.mark.parametrize(
    "reference",
    ["latest", "1.0.0", "sha256", "sha256:", "sha256:" + "a" * 31, ":" + HEX, "SHA256:" + HEX, f"{SHA}\n",
     f" {SHA}", "sha256:" + "a" * 32 + ".", "sha256::" + HEX, "sha256-:" + HEX, ""],
    ids=["tag", "version", "algorithm-alone", "empty-hex", "31-digits", "no-algorithm", "upper-algorithm",
         "newline", "leading-space", "dot-in-hex", "double-colon", "trailing-separator", "empty"],
)
def test_tags_and_malformed_digests_are_not_digests(reference: str) -> None:
    assert not is_digest(reference)


def test_kit_repository_name_is_camel_k_dash_kit_name() -> None:
    assert kit_repository_name("kit-abc123") == "camel-k-kit-abc123"


@pytest.mark.parametrize(
    ("repository", "kit"),
    [("camel-k/camel-k-kit-abc", "kit-abc"), ("camel-k-kit-abc", "kit-abc"),
     ("registry/team/camel-k/camel-k-kit-x", "kit-x"), ("org/camel-k-anything", "anything"),
     ("org/camel-k-", None), ("org/camel-k", None), ("org/other", None), ("camel-k-kit-a/sub", None),
     ("org/my-camel-k-kit-a", None), ("", None)],
)
def test_kit_name_of_repository_reads_the_last_segment_only(repository: str, kit: str | None) -> None:
    assert kit_name_of_repository(repository) == kit


@pytest.mark.parametrize(
    ("repository", "last"),
    [("a/b/camel-k-kit-c", "camel-k-kit-c"), ("camel-k-kit-c", "camel-k-kit-c"), ("a/", ""), ("", "")],
)
def test_last_segment_is_what_follows_the_last_slash(repository: str, last: str) -> None:
    assert last_segment(repository) == last


_SEGMENT = st.text(st.characters(codec="ascii", exclude_characters="/"), min_size=1, max_size=20)


@given(kit=_SEGMENT, organization=st.lists(_SEGMENT, max_size=3).map("/".join))
def test_kit_name_round_trips_through_its_repository(kit: str, organization: str) -> None:
    repository = f"{organization}/{kit_repository_name(kit)}" if organization else kit_repository_name(kit)
    assert kit_name_of_repository(repository) == kit
    assert last_segment(repository) == kit_repository_name(kit)
    assert kit_repository_name(kit).startswith(KIT_REPOSITORY_PREFIX)


@given(repository=st.text(st.characters(codec="ascii"), max_size=40))
def test_a_repository_names_a_kit_only_if_that_kit_maps_back_to_its_last_segment(repository: str) -> None:
    kit = kit_name_of_repository(repository)
    if kit is None:
        assert not last_segment(repository).startswith(KIT_REPOSITORY_PREFIX) or \
            last_segment(repository) == KIT_REPOSITORY_PREFIX
    else:
        assert kit and kit_repository_name(kit) == last_segment(repository)
