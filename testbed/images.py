"""Push test images to a real registry over its HTTP API (httpx, synchronous).

Used by the registry tests, the demo, the benchmark and the e2e tests, so that every one of
them builds content the way real tools do: blobs uploaded (POST then monolithic PUT),
manifests PUT under a tag or by digest. Images share layer blobs (like kits built on one
base image) but each gets a unique config blob, hence a unique digest, unless a ``config``
is given. Indexes (OCI) and manifest lists (Docker) reference children already pushed.

    digest = push_image(url, "org/camel-k-kit-a", ["1", "latest"])
    index, children = push_multiarch(url, "org/camel-k-kit-b", ["2"])

Pass ``client=httpx.Client(verify=ctx, auth=RegistryAuth(user, password))`` for a registry
with TLS, Basic auth or token auth.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALL_MANIFESTS = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
ARCHITECTURES = ("amd64", "arm64", "ppc64le", "s390x")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(seed: str, size: int = 1024) -> bytes:
    """Deterministic pseudo-random bytes: the same seed gives the same (shared) blob."""
    out = bytearray()
    block = seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


SHARED_LAYER = layer("kitgc-test-base-layer")  # every image built with default layers shares it


class RegistryAuth(httpx.Auth):
    """Basic or Bearer auth for pushing, answering the registry's challenge like docker does.

    Tokens are cached per repository and ask for ``pull,push,delete`` at once.
    """

    requires_response_body = True

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self._basic = None
        if username is not None:
            raw = f"{username}:{password or ''}".encode()
            self._basic = "Basic " + base64.b64encode(raw).decode()
        self._use_basic = False
        self._tokens: dict[str, str] = {}

    @staticmethod
    def _scope(request: httpx.Request) -> str:
        m = re.match(r"^/v2/(.+?)/(blobs|manifests|tags)/", request.url.path)
        return f"repository:{m.group(1)}:pull,push,delete" if m else "registry:catalog:*"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = self._scope(request)
        if self._use_basic and self._basic:
            request.headers["Authorization"] = self._basic
        elif scope in self._tokens:
            request.headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        response = yield request
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge:
            return
        if challenge.lower().startswith("basic") and self._basic:
            self._use_basic = True
            request.headers["Authorization"] = self._basic
            yield request
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        token_request = httpx.Request(
            "GET", params["realm"], params={"service": params.get("service", ""), "scope": scope}
        )
        if self._basic:
            token_request.headers["Authorization"] = self._basic
        token_response = yield token_request
        token_response.raise_for_status()
        doc = token_response.json()
        self._tokens[scope] = doc.get("token") or doc["access_token"]
        request.headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        yield request


@contextmanager
def client_or_own(client: httpx.Client | None) -> Iterator[httpx.Client]:
    """``client`` when given, else a client of our own, closed afterwards."""
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=30.0) as own:
        yield own


def _check(response: httpx.Response, what: str, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def push_blob(base_url: str, repo: str, data: bytes, *, client: httpx.Client | None = None) -> str:
    """Upload ``data`` as a blob of ``repo`` (skipped if already there); returns its digest."""
    digest = digest_of(data)
    with client_or_own(client) as c:
        if c.head(f"{base_url}/v2/{repo}/blobs/{digest}").status_code == 200:
            return digest
        started = _check(c.post(f"{base_url}/v2/{repo}/blobs/uploads/"), f"start upload to {repo}", 202)
        location = httpx.URL(base_url).join(started.headers["Location"])
        location = location.copy_merge_params({"digest": digest})
        _check(
            c.put(location, content=data, headers={"Content-Type": "application/octet-stream"}),
            f"upload {digest} to {repo}", 201,
        )
    return digest


def push_manifest(
    base_url: str, repo: str, reference: str, body: bytes, media_type: str, *,
    client: httpx.Client | None = None,
) -> str:
    """PUT ``body`` as ``repo:reference`` (a tag, or its own digest); returns the digest."""
    with client_or_own(client) as c:
        r = _check(
            c.put(f"{base_url}/v2/{repo}/manifests/{reference}", content=body,
                  headers={"Content-Type": media_type}),
            f"push manifest {repo}:{reference}", 201,
        )
    digest = str(r.headers.get("Docker-Content-Digest", digest_of(body)))
    assert digest == digest_of(body), f"registry digest {digest} differs from {digest_of(body)}"
    return digest


def _tag_all(base_url: str, repo: str, tags: Sequence[str], body: bytes, media_type: str,
             client: httpx.Client) -> str:
    digest = digest_of(body)
    for ref in list(tags) or [digest]:  # no tag: push by digest, an untagged manifest
        push_manifest(base_url, repo, ref, body, media_type, client=client)
    return digest


def image_config(architecture: str = "amd64", os: str = "linux", nonce: str | None = None,
                 layers: Sequence[bytes] = ()) -> bytes:
    """An image config blob; the nonce label makes it (and so the image digest) unique."""
    return json.dumps({
        "architecture": architecture, "os": os, "created": "1970-01-01T00:00:00Z",  # as Jib writes it
        "config": {"Labels": {"kitgc.test/nonce": nonce or uuid.uuid4().hex}},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(b) for b in layers]},
    }, sort_keys=True).encode()


def image_manifest(config: bytes, layers: Sequence[bytes], media_type: str = OCI_MANIFEST) -> bytes:
    oci = media_type == OCI_MANIFEST
    return json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "digest": digest_of(b), "size": len(b)}
                   for b in layers],
    }, indent=3).encode()


def push_image(
    base_url: str, repo: str, tags: Sequence[str] = (), *, layers: Sequence[bytes] | None = None,
    config: bytes | None = None, media_type: str = OCI_MANIFEST, architecture: str = "amd64",
    client: httpx.Client | None = None,
) -> str:
    """Push an image (config + layers) under every tag (none: by digest); returns its digest."""
    layers = (SHARED_LAYER,) if layers is None else tuple(layers)
    config = config if config is not None else image_config(architecture, layers=layers)
    body = image_manifest(config, layers, media_type)
    with client_or_own(client) as c:
        for blob in (config, *layers):
            push_blob(base_url, repo, blob, client=c)
        return _tag_all(base_url, repo, tags, body, media_type, c)


def push_index(
    base_url: str, repo: str, tags: Sequence[str] = (), *, children: Sequence[str],
    media_type: str = OCI_INDEX, platforms: Sequence[tuple[str, str]] | None = None,
    client: httpx.Client | None = None,
) -> str:
    """Push an index / manifest list of ``children`` (digests already in ``repo``)."""
    platforms = platforms or [("linux", ARCHITECTURES[i % len(ARCHITECTURES)]) for i in range(len(children))]
    with client_or_own(client) as c:
        entries = []
        for child, (os, arch) in zip(children, platforms, strict=True):
            head = _check(c.head(f"{base_url}/v2/{repo}/manifests/{child}", headers={"Accept": ALL_MANIFESTS}),
                          f"head {repo}@{child}", 200)
            entries.append({
                "mediaType": head.headers["Content-Type"].split(";")[0], "digest": child,
                "size": int(head.headers["Content-Length"]), "platform": {"os": os, "architecture": arch},
            })
        body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
        return _tag_all(base_url, repo, tags, body, media_type, c)


def push_multiarch(
    base_url: str, repo: str, tags: Sequence[str] = (), *, architectures: Sequence[str] = ("amd64", "arm64"),
    index_type: str = OCI_INDEX, client: httpx.Client | None = None,
) -> tuple[str, list[str]]:
    """An index with one untagged image per architecture; returns (index digest, child digests)."""
    image_type = OCI_MANIFEST if index_type == OCI_INDEX else DOCKER_MANIFEST
    with client_or_own(client) as c:
        children = [push_image(base_url, repo, (), media_type=image_type, architecture=a, client=c)
                    for a in architectures]
        index = push_index(base_url, repo, tags, children=children, media_type=index_type,
                           platforms=[("linux", a) for a in architectures], client=c)
    return index, children
