"""Image references: parsing and normalisation, and nothing else.

Follows the grammar of the Distribution project's ``reference`` package (the one Docker,
containerd and Kubernetes use), like go-containerregistry's ``pkg/name``: transport lives
elsewhere. An invalid reference is an error, never a guess, because the planner must know
exactly which digest a reference protects.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
# Every pattern is applied with fullmatch: "$" would also match before a trailing newline.
_DOMAIN = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)  # ASCII: Go's \w, not Python's Unicode \w
# Algorithm as in the OCI grammar (lower case: "SHA256:…" is no digest), hex as Distribution's.
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_SHA_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
_NAME_MAX = 255


class InvalidReference(ValueError):
    """A string that is not a valid image reference; the message says why."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised image reference.

    ``registry`` is the lower-cased host[:port] (``docker.io`` for Docker Hub, ``""`` for a
    bare digest such as a runtime's image ID; a dot-less host such as ``Foo`` keeps its case,
    see :func:`_normalise_host`); ``repository`` is the path inside it.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def by_digest(self) -> bool:
        """Whether the reference pins a digest (a digest wins over a tag written beside it)."""
        return self.digest is not None

    @property
    def effective_tag(self) -> str:
        """The tag a reference by tag pulls: with neither tag nor digest, ``latest``."""
        return self.tag or "latest"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed digest, else raise :class:`InvalidReference`."""
    if not _DIGEST.fullmatch(digest):
        raise InvalidReference(f"invalid digest {digest!r}: expected algorithm:hex")
    algorithm, _, hexpart = digest.partition(":")
    size = _SHA_HEX.get(algorithm)
    if size is not None and (len(hexpart) != size or hexpart != hexpart.lower()):
        raise InvalidReference(f"invalid digest {digest!r}: {algorithm} needs {size} lower-case hex characters")
    return digest


def digest_only(digest: str) -> ImageRef:
    """A reference that names nothing but a digest (e.g. a bare ``sha256:…`` image ID)."""
    return ImageRef(registry="", repository="", digest=validate_digest(digest))


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return DOCKER_HUB, name


def parse(text: str) -> ImageRef:
    """Parse and normalise ``text``; raise :class:`InvalidReference` naming the problem."""
    if not isinstance(text, str):
        raise InvalidReference(f"image reference must be a string, got {type(text).__name__}")
    if text == "":
        raise InvalidReference("empty image reference")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise InvalidReference(f"invalid image reference {text!r}: contains white space")

    remainder, digest = text, None
    if "@" in remainder:
        remainder, _, digest = remainder.rpartition("@")
        if "@" in remainder:
            raise InvalidReference(f"invalid image reference {text!r}: more than one '@'")
        validate_digest_for(text, digest)

    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid image reference {text!r}: invalid tag {tag!r}")

    if not remainder:
        raise InvalidReference(f"invalid image reference {text!r}: missing repository name")
    if len(remainder) > _NAME_MAX + 32:  # cheap early exit; the exact check is on the normalised name
        raise InvalidReference(f"invalid image reference {text!r}: name longer than {_NAME_MAX} characters")

    domain, path = _split_domain(remainder)
    if domain is not DOCKER_HUB and not _DOMAIN.fullmatch(domain):
        raise InvalidReference(f"invalid image reference {text!r}: invalid registry host {domain!r}")
    if not path:
        raise InvalidReference(f"invalid image reference {text!r}: missing repository path")
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            if component != component.lower() and _PATH_COMPONENT.fullmatch(component.lower()):
                raise InvalidReference(
                    f"invalid image reference {text!r}: repository name must be lower-case"
                )
            raise InvalidReference(f"invalid image reference {text!r}: invalid path component {component!r}")

    registry = _normalise_host(domain)
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    # Like Distribution, the limit applies to the normalised name (docker.io/library/… included),
    # so that whatever parses also prints to something that parses again.
    if len(registry) + 1 + len(path) > _NAME_MAX:
        raise InvalidReference(f"invalid image reference {text!r}: name longer than {_NAME_MAX} characters")
    # Interned: a cluster names the same few hosts and a few thousand repositories hundreds of
    # thousands of times, and every parse would otherwise hold its own copies (31 MB of
    # ImageRefs at 100,000 manifests, a fifth of them host strings). Digests are not: one per
    # image, each parsed once per read (kitgc.cluster.found caches parses), and an interned
    # string costs an entry in a table the interpreter never shrinks (see kitgc.model.Manifest).
    return ImageRef(registry=sys.intern(registry), repository=sys.intern(path),
                    tag=sys.intern(tag) if tag is not None else None, digest=digest)


def _normalise_host(domain: str) -> str:
    """Lower-case a host, unless that would stop it reading as a host.

    ``Foo/bar`` names the host ``Foo`` only because of its capital letter; printed as
    ``foo/bar`` it would read as the Docker Hub repository ``foo/bar``. Such a host keeps
    its case (hosts compare case-insensitively anyway; the planner ignores hosts).
    """
    lowered = domain.lower()
    if "." in lowered or ":" in lowered or lowered == "localhost":
        return lowered
    return domain


def validate_digest_for(text: str, digest: str) -> None:
    try:
        validate_digest(digest)
    except InvalidReference as exc:
        raise InvalidReference(f"invalid image reference {text!r}: {exc}") from None


def split_address(address: str) -> tuple[str, str]:
    """Split a registry address ``host[:port][/path/prefix]`` into (host, prefix)."""
    address = address.strip().rstrip("/")
    for scheme in ("https://", "http://"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
    host, _, prefix = address.partition("/")
    if not host or not _DOMAIN.fullmatch(host):
        raise InvalidReference(f"invalid registry address {address!r}: expected host[:port][/prefix]")
    for component in prefix.split("/") if prefix else ():
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(f"invalid registry address {address!r}: invalid path {prefix!r}")
    return host.lower(), prefix
