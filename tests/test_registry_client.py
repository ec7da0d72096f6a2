"""RegistryClient against a real Distribution registry, and against scripted answers for the
failures a real registry will not produce on demand (retries, garbage, lying digests)."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import time
from collections.abc import Callable

import httpx
import pytest

from kitgc.errors import ConfigError, DeletionDisabled, RegistryError
from kitgc.model import Manifest
from kitgc.registry import MANIFEST_ACCEPT, RegistryClient
from kitgc.registry.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from kitgc.stores.distribution import DistributionStore
from testbed.images import SHARED_LAYER, digest_of, image_config, push_image, push_multiarch
from testbed.registry_server import RegistryServer

Handler = Callable[[httpx.Request], httpx.Response]


def real(server: RegistryServer, **kw: object) -> RegistryClient:
    return RegistryClient(server.address, insecure=True, backoff=0.001, **kw)  # type: ignore[arg-type]


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def scripted(handler: Handler, **kw: object) -> tuple[RegistryClient, Sleeps]:
    sleeps = Sleeps()
    client = RegistryClient(
        "registry.test", insecure=True, transport=httpx.MockTransport(handler), backoff=0.01,
        sleep=sleeps, **kw,  # type: ignore[arg-type]
    )
    return client, sleeps


IMAGE = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 7},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "b" * 64,
                "size": 42}],
}).encode()


def manifest_reply(body: bytes = IMAGE, media_type: str = OCI_MANIFEST, digest: str | None = "auto") -> httpx.Response:
    headers = {"Content-Type": media_type}
    if digest == "auto":
        headers["Docker-Content-Digest"] = digest_of(body)
    elif digest:
        headers["Docker-Content-Digest"] = digest
    return httpx.Response(200, content=body, headers=headers)


# --- real registry ---------------------------------------------------------------------


async def test_catalog_follows_link_pages_until_absent(registry: RegistryServer, org: str) -> None:
    repos = [f"{org}/camel-k-kit-{i}" for i in range(5)]
    for repo in repos:
        push_image(registry.url, repo, ["1"])
    async with real(registry) as client:
        names = await client.catalog(page_size=2)
        assert client.stats["catalog"] >= 3
    assert [n for n in names if n.startswith(org + "/")] == repos
    assert len(names) == len(set(names))


async def test_oci_image_manifest_gives_blobs_and_verified_digest(registry: RegistryServer, org: str) -> None:
    repo = f"{org}/camel-k-kit-oci"
    config = image_config(nonce="x", layers=(SHARED_LAYER,))
    digest = push_image(registry.url, repo, ["7"], config=config)
    async with real(registry) as client:
        by_tag = await client.get_manifest(repo, "7")
        by_digest = await client.get_manifest(repo, digest)
    assert by_tag.digest == by_digest.digest == digest == digest_of(by_tag.body)
    assert by_tag.media_type == OCI_MANIFEST and by_tag.children == ()
    assert [(b.digest, b.size) for b in by_tag.blobs] == [
        (digest_of(config), len(config)), (digest_of(SHARED_LAYER), len(SHARED_LAYER))
    ]


async def test_docker_schema2_manifest_is_understood(registry: RegistryServer, org: str) -> None:
    repo = f"{org}/camel-k-kit-docker"
    digest = push_image(registry.url, repo, ["1"], media_type=DOCKER_MANIFEST)
    async with real(registry) as client:
        fetched = await client.get_manifest(repo, "1")
    assert (fetched.digest, fetched.media_type, len(fetched.blobs)) == (digest, DOCKER_MANIFEST, 2)


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_LIST])
async def test_index_tag_resolves_to_the_index_not_a_platform_child(
    registry: RegistryServer, org: str, index_type: str
) -> None:
    repo = f"{org}/camel-k-kit-multi"
    index, children = push_multiarch(registry.url, repo, ["1"], index_type=index_type)
    async with real(registry) as client:
        fetched = await client.get_manifest(repo, "1")
    assert (fetched.digest, fetched.media_type, fetched.children, fetched.blobs) == (
        index, index_type, tuple(children), ()
    )


async def test_several_tags_on_one_digest_share_it(registry: RegistryServer, org: str) -> None:
    repo = f"{org}/camel-k-kit-tags"
    digest = push_image(registry.url, repo, ["a", "b", "c"])
    async with real(registry) as client:
        assert sorted(await client.tags(repo)) == ["a", "b", "c"]
        assert {(await client.get_manifest(repo, t)).digest for t in "abc"} == {digest}


async def test_delete_by_digest_removes_every_tag_and_second_delete_is_false(
    registry: RegistryServer, org: str
) -> None:
    repo = f"{org}/camel-k-kit-del"
    digest = push_image(registry.url, repo, ["1", "2"])
    keep = push_image(registry.url, repo, ["3"])
    async with real(registry) as client:
        assert await client.delete_manifest(repo, digest) is True
        assert await client.tags(repo) == ["3"]
        with pytest.raises(RegistryError) as gone:
            await client.get_manifest(repo, "1")
        assert gone.value.status == 404
        assert await client.delete_manifest(repo, digest) is False
        assert (await client.get_manifest(repo, "3")).digest == keep


async def test_tags_of_repository_with_no_tags_left_is_empty(registry: RegistryServer, org: str) -> None:
    repo = f"{org}/camel-k-kit-empty"
    digest = push_image(registry.url, repo, ["1"])
    async with real(registry) as client:
        await client.delete_manifest(repo, digest)
        assert await client.tags(repo) == []


async def test_delete_on_registry_without_deletion_raises_deletion_disabled(
    registry_factory: Callable[..., RegistryServer], org: str
) -> None:
    server = registry_factory(delete_enabled=False)
    repo = f"{org}/camel-k-kit-x"
    digest = push_image(server.url, repo, ["1"])
    async with real(server) as client:
        with pytest.raises(DeletionDisabled, match=r"storage\.delete\.enabled") as err:
            await DistributionStore(client).delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",)))
    assert err.value.code == "UNSUPPORTED" and err.value.status == 405


async def test_tls_without_the_ca_fails_with_a_clear_error(tls_registry: RegistryServer) -> None:
    async with RegistryClient(tls_registry.address, backoff=0.001) as client:
        with pytest.raises(RegistryError, match=r"certificate verification failed.*REGISTRY_CA_FILE") as err:
            await client.catalog()
        assert client.stats["catalog"] == 1  # not retried: it cannot get better
    assert "\n" not in str(err.value)


def test_unreadable_ca_file_is_a_config_error_naming_the_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    for path in (str(bad), str(tmp_path / "missing.pem")):
        with pytest.raises(ConfigError, match="REGISTRY_CA_FILE"):
            RegistryClient("registry.test", ca_file=path)


def test_address_with_a_path_is_refused() -> None:
    with pytest.raises(ConfigError):
        RegistryClient("registry.test/prefix")


# --- scripted answers ------------------------------------------------------------------


async def test_manifest_requests_always_send_the_full_accept() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Accept", ""))
        return manifest_reply()

    client, _ = scripted(handler)
    async with client:
        await client.get_manifest("o/camel-k-kit-a", "1")
        await client.get_manifest("o/camel-k-kit-a", digest_of(IMAGE))
    for accept in seen:
        assert accept == MANIFEST_ACCEPT
        for media_type in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST):
            assert media_type in accept


async def test_tags_follow_link_header_and_null_means_none() -> None:
    pages = {
        "/v2/o/r/tags/list": (["a", "b"], '</v2/o/r/tags/list?last=b&n=2>; rel="next"'),
        "/v2/o/r/tags/list?last=b&n=2": (["c"], '<https://registry.test/v2/o/r/tags/list?last=c>; rel="next"'),
        "/v2/o/r/tags/list?last=c": (None, None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        tags, link = pages[request.url.raw_path.decode()]
        return httpx.Response(200, json={"name": "o/r", "tags": tags}, headers={"Link": link} if link else {})

    client, _ = scripted(handler)
    async with client:
        assert await client.tags("o/r") == ["a", "b", "c"]
        assert client.stats["tags"] == 3


async def test_link_pages_that_loop_are_an_error_not_a_hang() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"repositories": ["a"]}, headers={"Link": '</v2/_catalog?n=1>; rel="next"'})

    client, _ = scripted(handler)
    async with client:
        with pytest.raises(RegistryError, match="loop"):
            await client.catalog(page_size=1)


async def test_digest_header_that_differs_from_the_body_is_refused() -> None:
    client, _ = scripted(lambda r: manifest_reply(digest="sha256:" + "0" * 64))
    async with client:
        with pytest.raises(RegistryError, match=r"digest mismatch: header sha256:0+, body sha256:"):
            await client.get_manifest("o/camel-k-kit-a", "1")


async def test_manifest_fetched_by_digest_must_hash_to_that_digest() -> None:
    client, _ = scripted(lambda r: manifest_reply(digest=None))
    wanted = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    async with client:
        with pytest.raises(RegistryError, match="digest mismatch: requested"):
            await client.get_manifest("o/camel-k-kit-a", wanted)
        fetched = await client.get_manifest("o/camel-k-kit-a", "1")  # by tag, no header: computed
    assert fetched.digest == digest_of(IMAGE)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html>oops</html>", "text/html", "not valid JSON"),
        (IMAGE[: len(IMAGE) // 2], OCI_MANIFEST, "not valid JSON"),
        (b"[1, 2]", OCI_MANIFEST, "not a JSON object"),
        (b'{"schemaVersion": 2, "mediaType": "application/x-unknown"}', "application/x-unknown", "unsupported"),
        (b'{"schemaVersion": 1, "name": "o/r", "fsLayers": []}',
         "application/vnd.docker.distribution.manifest.v1+prettyjws", "schema1"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "nope"}]}).encode(),
         OCI_INDEX, "invalid digest"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode(),
         OCI_MANIFEST, "config has no digest"),
    ],
    ids=["html", "truncated", "wrong-shape", "unknown-type", "schema1", "bad-child", "no-config"],
)
async def test_garbage_manifest_bodies_become_one_line_registry_errors(
    body: bytes, content_type: str, message: str
) -> None:
    client, _ = scripted(lambda r: manifest_reply(body, content_type))
    async with client:
        with pytest.raises(RegistryError, match=message) as err:
            await client.get_manifest("o/camel-k-kit-a", "v1")
    assert "manifest o/camel-k-kit-a:v1" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(200, content=b"not json"), httpx.Response(200, json=["x"]), httpx.Response(200, json={}),
     httpx.Response(200, json={"repositories": [1, 2]}), httpx.Response(200, json={"repositories": "abc"})],
    ids=["not-json", "list", "no-field", "not-strings", "not-a-list"],
)
async def test_garbage_catalog_answers_are_registry_errors(reply: httpx.Response) -> None:
    client, _ = scripted(lambda r: reply)
    async with client:
        with pytest.raises(RegistryError, match=r"^catalog: "):
            await client.catalog()


async def test_error_body_code_is_read_not_only_the_status() -> None:
    body = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied", "detail": None}]}
    client, _ = scripted(lambda r: httpx.Response(405, json=body))
    async with client:
        with pytest.raises(RegistryError) as err:
            await DistributionStore(client).delete_manifest(Manifest("o/camel-k-kit-a", "sha256:" + "c" * 64, ""))
    assert not isinstance(err.value, DeletionDisabled)
    assert (err.value.status, err.value.code) == (405, "DENIED")
    assert "DENIED" in str(err.value) and "o/camel-k-kit-a@sha256:" in str(err.value)


async def test_405_without_code_means_deletion_disabled() -> None:
    client, _ = scripted(lambda r: httpx.Response(405, text="Method Not Allowed"))
    async with client:
        with pytest.raises(DeletionDisabled):
            await DistributionStore(client).delete_manifest(Manifest("o/camel-k-kit-a", "sha256:" + "c" * 64, ""))


async def test_malformed_tags_never_reach_the_wire() -> None:
    client, _ = scripted(lambda r: manifest_reply())
    async with client:
        for tag in ("v1\n", "tag/../x", "ünïcode", "-x"):
            with pytest.raises(RegistryError, match="invalid tag"):
                await client.get_manifest("o/camel-k-kit-a", tag)
        assert client.stats["manifest_get"] == 0


async def test_delete_by_tag_is_refused_before_any_request() -> None:
    client, _ = scripted(lambda r: httpx.Response(202))
    async with client:
        with pytest.raises(RegistryError, match="refusing"):
            await client.delete_manifest("o/camel-k-kit-a", "latest")
        assert client.stats["delete"] == 0


async def test_invalid_repository_names_never_reach_the_wire() -> None:
    client, _ = scripted(lambda r: httpx.Response(200, json={"tags": []}))
    async with client:
        for name in ("../etc", "Org/Camel", "a//b", "", "o/camel-k-kit-a\n", "o/r?x=1"):
            with pytest.raises(RegistryError, match="invalid repository name"):
                await client.tags(name)
        assert client.stats["tags"] == 0


async def test_503_is_retried_then_succeeds() -> None:
    answers = [httpx.Response(503), httpx.Response(502), manifest_reply()]
    client, sleeps = scripted(lambda r: answers.pop(0))
    async with client:
        fetched = await client.get_manifest("o/camel-k-kit-a", "1")
        assert (client.stats["manifest_get"], client.stats["retry"]) == (3, 2)
    assert fetched.digest == digest_of(IMAGE)
    assert len(sleeps) == 2 and 0 < sleeps[0] <= 0.01 and sleeps[1] <= 0.02  # exponential from backoff


async def test_429_honours_retry_after_seconds_and_http_date_capped() -> None:
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    answers = [httpx.Response(429, headers={"Retry-After": "2"}),
               httpx.Response(429, headers={"Retry-After": later}),
               httpx.Response(200, json={"repositories": []})]
    client, sleeps = scripted(lambda r: answers.pop(0), retry_after_cap=30.0)
    async with client:
        assert await client.catalog() == []
    assert sleeps == [2.0, 30.0]


async def test_retries_are_bounded_and_the_last_status_is_reported() -> None:
    client, sleeps = scripted(lambda r: httpx.Response(503, json={"errors": [{"code": "UNAVAILABLE"}]}))
    async with client:
        with pytest.raises(RegistryError, match="HTTP 503 UNAVAILABLE") as err:
            await client.tags("o/camel-k-kit-a")
        assert client.stats["tags"] == 4 and len(sleeps) == 3
    assert err.value.status == 503


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                 httpx.RemoteProtocolError("peer closed connection")])
async def test_connection_errors_and_timeouts_are_retried_then_reported(exc: Exception) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise exc

    client, _ = scripted(handler, retries=3)
    async with client:
        with pytest.raises(RegistryError, match=r"manifest o/camel-k-kit-a:1: .*after 3 attempts"):
            await client.get_manifest("o/camel-k-kit-a", "1")
    assert len(calls) == 3


async def test_404_is_not_retried() -> None:
    client, sleeps = scripted(lambda r: httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]}))
    async with client:
        with pytest.raises(RegistryError) as err:
            await client.get_manifest("o/camel-k-kit-a", "1")
    assert (err.value.status, err.value.code, sleeps) == (404, "MANIFEST_UNKNOWN", [])


async def test_on_request_sees_every_request() -> None:
    events: list[tuple[str, str, int | None]] = []
    answers = [httpx.Response(503), httpx.Response(200, json={"repositories": ["a"]})]
    client, _ = scripted(lambda r: answers.pop(0), on_request=lambda k, m, u, s, t: events.append((k, m, s)))
    async with client:
        await client.catalog()
    assert events == [("catalog", "GET", 503), ("catalog", "GET", 200)]


async def test_https_client_against_plain_http_registry_fails_fast_and_clearly(
    registry: RegistryServer,
) -> None:
    async with RegistryClient(registry.address, backoff=0.001) as client:
        with pytest.raises(RegistryError, match="REGISTRY_INSECURE"):
            await client.catalog()
        assert client.stats["catalog"] == 1


async def test_whole_request_timeout_covers_a_server_that_never_finishes() -> None:
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    client, sleeps = scripted(stall, timeout=0.05, retries=2)  # type: ignore[arg-type]
    async with client:
        with pytest.raises(RegistryError, match=r"no complete answer within 0\.05 s"):
            await client.catalog()
    assert len(sleeps) == 1


async def test_requests_in_flight_never_exceed_concurrency() -> None:
    in_flight, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return manifest_reply()

    client, _ = scripted(handler, concurrency=3)  # type: ignore[arg-type]
    async with client:
        await asyncio.gather(*(client.get_manifest("o/camel-k-kit-a", str(i)) for i in range(20)))
    assert peak == 3
