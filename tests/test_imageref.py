"""Image reference parsing: a table of tricky references, and fuzzing.

The planner protects exactly the digest a reference names, so a reference parsed wrongly
is an image deleted wrongly. Expectations follow the Distribution ``reference`` package.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.imageref import ImageRef, InvalidReference, digest_only, parse, split_address, validate_digest

H = "sha256:" + "a" * 64
H512 = "sha512:" + "b" * 128

VALID = [
    # text, registry, repository, tag, digest
    ("busybox", "docker.io", "library/busybox", None, None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    (f"busybox@{H}", "docker.io", "library/busybox", None, H),
    (f"busybox:1.36@{H}", "docker.io", "library/busybox", "1.36", H),
    ("user/app", "docker.io", "user/app", None, None),
    ("docker.io/busybox", "docker.io", "library/busybox", None, None),
    ("index.docker.io/busybox", "docker.io", "library/busybox", None, None),
    ("registry-1.docker.io/user/app:v1", "docker.io", "user/app", "v1", None),
    ("Docker.IO/library/busybox", "docker.io", "library/busybox", None, None),
    ("quay.io/a/b/c:tag", "quay.io", "a/b/c", "tag", None),
    ("host:5000/a/b/c:tag", "host:5000", "a/b/c", "tag", None),
    (f"host:5000/a/b/c:tag@{H}", "host:5000", "a/b/c", "tag", H),
    ("10.0.0.7:5000/camel-k/camel-k-kit-abc:42", "10.0.0.7:5000", "camel-k/camel-k-kit-abc", "42", None),
    ("192.168.1.1/x", "192.168.1.1", "x", None, None),
    ("[::1]:5000/x/y:1", "[::1]:5000", "x/y", "1", None),
    ("[2001:db8::1]/x", "[2001:db8::1]", "x", None, None),
    ("localhost/x", "localhost", "x", None, None),
    ("localhost:5000/x", "localhost:5000", "x", None, None),
    ("localhost", "docker.io", "library/localhost", None, None),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # Distribution reads a tag
    ("Registry.Example.COM/a", "registry.example.com", "a", None, None),
    ("Foo/bar", "Foo", "bar", None, None),  # capital letter: a host (kept as written, see _normalise_host)
    ("a.b/c__d/e-f.g_h---i", "a.b", "c__d/e-f.g_h---i", None, None),
    ("x/y:Tag_1.2-rc", "docker.io", "x/y", "Tag_1.2-rc", None),
    ("x/y:_", "docker.io", "x/y", "_", None),
    ("x:" + "t" * 128, "docker.io", "library/x", "t" * 128, None),
    (f"x@{H512}", "docker.io", "library/x", None, H512),
    ("x@md5:" + "0" * 32, "docker.io", "library/x", None, "md5:" + "0" * 32),  # unknown algorithm, well formed
    ("a" * 237, "docker.io", "library/" + "a" * 237, None, None),  # 255 characters once normalised
]

INVALID = [
    # text, part of the message
    ("", "empty"),
    (" busybox", "white space"),
    ("busybox ", "white space"),
    ("busy box", "white space"),
    ("busybox\n", "white space"),
    ("busybox\t:1", "white space"),
    ("Busybox", "lower-case"),
    ("user/App", "lower-case"),
    ("host:5000/A/b", "lower-case"),
    ("x:tagé", "invalid tag"),
    ("x:-tag", "invalid tag"),
    ("x:.tag", "invalid tag"),
    ("x:" + "t" * 129, "invalid tag"),
    ("x:", "invalid tag"),
    ("x@sha256:abc", "invalid digest"),
    ("x@sha256:" + "A" * 64, "lower-case hex"),
    ("x@sha256:" + "a" * 63, "sha256 needs 64"),
    ("x@sha256:" + "a" * 65, "sha256 needs 64"),
    ("x@sha512:" + "a" * 64, "sha512 needs 128"),
    ("x@sha384:" + "A" * 96, "sha384 needs 96"),
    ("x@SHA256:" + "a" * 64, "invalid digest"),
    ("x@" + "a" * 64, "invalid digest"),
    ("x@", "invalid digest"),
    (f"x@{H}@{H}", "more than one '@'"),
    (f"@{H}", "missing repository name"),
    (":tag", "missing repository name"),
    ("/x", "invalid path component"),
    ("x/", "invalid path component"),
    ("a//b", "invalid path component"),
    ("host:5000/", "missing repository path"),
    ("x/-y", "invalid path component"),
    ("x/y_", "invalid path component"),
    ("x/y...z", "invalid path component"),
    ("-host.com/x", "invalid registry host"),
    ("host:port/x", "invalid registry host"),
    ("host:/x", "invalid registry host"),
    ("[::1/x", "invalid registry host"),
    ("[::1]", "invalid tag"),
    ("a:b:c", "invalid path component"),
    ("a" * 238, "longer than 255"),
    ("registry.example.com/" + "a" * 240, "longer than 255"),
    ("a" * 10_000, "longer than 255"),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), VALID)
def test_valid_reference_is_normalised(text: str, registry: str, repository: str, tag: str, digest: str) -> None:
    parsed = parse(text)
    assert parsed == ImageRef(registry, repository, tag, digest)
    assert parse(str(parsed)) == parsed


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_reference_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message.replace("(", r"\(")):
        parse(text)


def test_docker_hub_aliases_are_one_registry() -> None:
    names = ["busybox", "library/busybox", "docker.io/busybox", "index.docker.io/library/busybox",
             "registry-1.docker.io/busybox"]
    assert {parse(n) for n in names} == {ImageRef("docker.io", "library/busybox")}


def test_non_string_is_an_invalid_reference() -> None:
    with pytest.raises(InvalidReference, match="must be a string"):
        parse(None)  # type: ignore[arg-type]


def test_string_form_shows_name_tag_and_digest() -> None:
    assert str(parse(f"host:5000/a/b:1@{H}")) == f"host:5000/a/b:1@{H}"
    assert parse(f"host:5000/a/b:1@{H}").name == "host:5000/a/b"


def test_bare_digest_reference() -> None:
    ref = digest_only(H)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.name) == ("", "", None, H, "")
    with pytest.raises(InvalidReference):
        digest_only("sha256:nothex")


@pytest.mark.parametrize("digest", [H + "\n", "\n" + H, H.upper(), "sha256:" + "a" * 64 + " ", "sha256"])
def test_validate_digest_refuses_near_misses(digest: str) -> None:
    with pytest.raises(InvalidReference):
        validate_digest(digest)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("registry.example:5000", ("registry.example:5000", "")),
        ("https://Registry.Example/", ("registry.example", "")),
        ("http://10.0.0.7:5000/team/prefix", ("10.0.0.7:5000", "team/prefix")),
        ("[::1]:5000", ("[::1]:5000", "")),
    ],
)
def test_split_address(address: str, expected: tuple[str, str]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["", "/prefix", "host/Prefix", "host/a\n/b", "ho st", "host:x"])
def test_split_address_refuses_bad_addresses(address: str) -> None:
    with pytest.raises(InvalidReference):
        split_address(address)


# --- fuzzing ------------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_ALPHABET = "abcAB09._-/:@[]% \n\téß" + "sha256" + "f"


def _check(text: str) -> None:
    try:
        parsed = parse(text)
    except InvalidReference:
        return
    assert parse(str(parsed)) == parsed


@FUZZ
@given(st.text(alphabet=_ALPHABET, max_size=40) | st.text(max_size=40))
def test_parse_raises_only_invalid_reference_and_round_trips(text: str) -> None:
    _check(text)


_COMPONENT = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-{1,3})[a-zA-Z0-9]{1,4}){0,2}", fullmatch=True)
_HOST = st.sampled_from(["", "docker.io/", "index.docker.io/", "localhost/", "localhost:5000/", "Reg.Example:443/",
                         "10.1.2.3/", "[::1]:5000/", "Foo/", "a-b.c/"])


@FUZZ
@given(
    _HOST,
    st.lists(_COMPONENT, min_size=1, max_size=4),
    st.none() | st.from_regex(r"[\w][\w.-]{0,20}", fullmatch=True),
    st.none() | st.sampled_from([H, H512, "sha256:" + "0" * 64]),
)
def test_well_formed_references_parse_and_round_trip(host: str, path: list[str], tag: str | None,
                                                     digest: str | None) -> None:
    text = host + "/".join(path) + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    _check(text)


def test_parsed_references_share_hosts_and_repositories_and_intern_no_digest() -> None:
    """Hundreds of thousands of references name a few hosts and a few thousand repositories:
    each is held once, shared with the inventory's manifests (interned). Digests and the
    registry's tags are one manifest's own: interned, each took an entry in the interpreter's
    table of interned strings, which never shrinks, and at 100,000 manifests pushed it past a
    doubling (15 MB) for the few strings it shared."""
    import sys

    hex_ = "a" * 64
    first = parse(f"Registry.Example.com/camel-k/camel-k-kit-x:1@sha256:{hex_}")
    second = parse("".join(["registry.example.com/", "camel-k/camel-k-kit-x", ":1", f"@sha256:{hex_}"]))
    assert first == second
    assert first.registry is second.registry and first.repository is second.repository
    from kitgc.model import Manifest

    interned = sys.intern("".join(["sha256:", "b" * 64]))  # what interning would hand back
    listed = Manifest("".join(["camel-k/", "camel-k-kit-x"]), "".join(["sha256:", "b" * 64]),
                      "".join(["application/", "m"]), ("".join(["10", "0042"]),))
    assert listed.repository is first.repository and listed.media_type is sys.intern("application/m")
    assert listed.digest == interned and listed.digest is not interned
    parsed = parse(f"registry.example.com/camel-k/camel-k-kit-y@{''.join(['sha256:', 'b' * 64])}")
    assert parsed.digest == interned and parsed.digest is not interned


def test_kits_and_the_integrations_using_them_share_names_phases_and_types() -> None:
    """Twenty thousand kits: each name, namespace, phase and kit type is held once (interned),
    the kit's and every KitUse's naming it."""
    from datetime import UTC, datetime

    from kitgc.model import Kit, KitUse, ObjectRef

    def fresh(*parts: str) -> str:
        return "".join(parts)

    kit = Kit(fresh("sh", "op"), fresh("kit-", "abc"), fresh("plat", "form"), fresh("Rea", "dy"), datetime.now(UTC))
    other = Kit(fresh("sh", "op"), fresh("kit-", "xyz"), fresh("plat", "form"), fresh("Rea", "dy"), datetime.now(UTC))
    use = KitUse(ObjectRef("Integration", "orders", "shop"), fresh("sh", "op"), fresh("kit-", "abc"))
    assert use.kit_name is kit.name and use.kit_namespace is kit.namespace is other.namespace
    assert kit.phase is other.phase and kit.kit_type is other.kit_type
