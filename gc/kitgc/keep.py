"""KEEP_IMAGES: patterns of images an operator wants kept, whatever refers to them.

A pattern is a repository glob, optionally with a host in front and a ``:<tag glob>`` or an
``@<digest>`` behind: ``acme/camel-k-kit-abc*``, ``**/camel-k-kit-*:prod-*``,
``registry.example:5000/acme/**@sha256:<hex>``, or a bare ``@sha256:<hex>`` (that digest in
any repository). In the repository, ``*`` matches within one path segment and ``**`` (a
whole segment) any number of segments, none included; in a tag, ``*`` matches any run of
characters. Everything else is literal.

Whether the first segment is a host follows the Distribution rule (as :mod:`kitgc.imageref`
does): it is one when it contains ``.`` or ``:`` or is ``localhost``. A host may not hold a
wildcard, and is compared with the registry's host lower-cased; a pattern without a host
matches on any host. Pure: no I/O, and an invalid pattern is a :class:`ValueError` whose one
line names it (a configuration error).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kitgc.imageref import InvalidReference, parse, split_address, validate_digest

_SEGMENT = re.compile(r"[a-z0-9._*-]+")
_TAG = re.compile(r"[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}")
_ANY = "**"


@dataclass(frozen=True)
class KeepPattern:
    """One parsed pattern: its text as written, and what it matches."""

    text: str
    host: str | None = None  # lower-cased host[:port], or None for any host
    repository: re.Pattern[str] | None = None  # None: any repository (a bare digest)
    tag: re.Pattern[str] | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return self.text


def parse_keep_patterns(text: str) -> tuple[KeepPattern, ...]:
    """The comma-separated patterns of ``text``; ValueError naming the first bad one."""
    raw = [p.strip() for p in text.split(",")]
    if any(not p for p in raw):
        raise ValueError(f"empty pattern in {text!r} (a comma too many?)")
    return tuple(parse_keep_pattern(p) for p in dict.fromkeys(raw))


def parse_keep_pattern(text: str) -> KeepPattern:
    """One pattern; see the module docstring for the grammar."""
    try:
        return _parse(text)
    except ValueError as exc:
        raise ValueError(f"invalid pattern {text!r}: {exc}") from None


def _parse(text: str) -> KeepPattern:
    if not text:
        raise ValueError("empty pattern")
    if any(ch.isspace() for ch in text):
        raise ValueError("contains white space")
    name, digest = text, None
    if "@" in name:
        name, _, digest = name.partition("@")
        if "@" in digest:
            raise ValueError("more than one '@'")
        try:
            validate_digest(digest)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
        if digest is not None:
            raise ValueError("both a tag and a digest; give one of them")
        if not _TAG.fullmatch(tag):
            raise ValueError(f"invalid tag {tag!r}: letters, digits, '_', '.', '-' and '*' (up to 128)")
    if not name:
        if digest is None:
            raise ValueError("missing repository (use **:<tag> for a tag in any repository)")
        return KeepPattern(text, digest=digest)
    host, path = _split_host(name)
    return KeepPattern(text, host, _repository_regex(path), _tag_regex(tag) if tag else None, digest)


def _split_host(name: str) -> tuple[str | None, str]:
    """(host or None, repository glob) by the Distribution rule for the first segment."""
    first, sep, rest = name.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        return None, name
    if "*" in first:
        raise ValueError(f"host {first!r} cannot hold a wildcard")
    try:
        host, _ = split_address(first)
    except InvalidReference:
        raise ValueError(f"invalid registry host {first!r}") from None
    if not rest:
        raise ValueError("missing repository after the host")
    return host, rest


def _repository_regex(path: str) -> re.Pattern[str]:
    """``*`` within one segment, ``**`` (a whole segment) across any number of them, none included."""
    segments: list[str] = []
    for segment in path.split("/"):
        if not segment:
            raise ValueError("empty path segment")
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(f"invalid path segment {segment!r}: lower-case letters, digits, '.', '_', '-', '*'")
        if _ANY in segment and segment != _ANY:
            raise ValueError(f"'**' must be a whole path segment, not part of {segment!r}")
        if not (segment == _ANY and segments and segments[-1] == _ANY):  # a/**/**/b is a/**/b
            segments.append(segment)
    out, joined = "", False  # joined: something is written that the next segment follows with "/"
    for i, segment in enumerate(segments):
        if segment != _ANY:
            out += ("/" if joined else "") + "[^/]*".join(re.escape(p) for p in segment.split("*"))
            joined = True
        elif joined:
            out += "(?:/[^/]+)*"
        else:
            out += ".*" if i == len(segments) - 1 else "(?:[^/]+/)*"
    return re.compile(out)


def _tag_regex(tag: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in tag.split("*")))


def host_key(host: str) -> str:
    """A registry host as patterns compare it: lower-cased, Docker Hub's aliases as docker.io."""
    lowered = host.strip().lower().partition("/")[0]
    if "." in lowered or ":" in lowered or lowered == "localhost":
        try:
            return parse(f"{lowered}/x").registry
        except InvalidReference:
            return lowered
    return lowered


def matches(pattern: KeepPattern, registry_host: str, repository: str, tags: Iterable[str], digest: str) -> bool:
    """Whether one manifest (``repository`` on ``registry_host``, its tags and digest) matches."""
    if pattern.host is not None and host_key(pattern.host) != host_key(registry_host):
        return False
    if pattern.repository is not None and not pattern.repository.fullmatch(repository):
        return False
    if pattern.digest is not None and pattern.digest != digest:
        return False
    tag = pattern.tag
    return tag is None or any(tag.fullmatch(t) for t in tags)


def first_match(
    patterns: Sequence[KeepPattern], registry_host: str, repository: str, tags: Iterable[str], digest: str
) -> KeepPattern | None:
    """The first of ``patterns`` the manifest matches, or None."""
    tags = tuple(tags)
    return next((p for p in patterns if matches(p, registry_host, repository, tags, digest)), None)
