"""Registry checks: TLS, authentication, listing, tags and manifests, read-only.

Each check goes through the code a run uses (the store from
:func:`kitgc.stores.choose.open_store`, :class:`~kitgc.registry.client.RegistryClient`, the
:class:`~kitgc.registry.transport.Transport` that holds the auth logic), so a green doctor
means the run's own requests work, not a look-alike. Nothing here sends DELETE, PUT or
POST to the registry: whether deletion is permitted is :mod:`kitgc.doctor.permission`'s to
say, from what the token service grants.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from kitgc.config import Settings
from kitgc.doctor.checks import Check, Findings
from kitgc.doctor.permission import delete_permission, store_checks
from kitgc.doctor.target import Target
from kitgc.errors import ConfigError, KitGCError
from kitgc.registry.auth import Challenge, Credentials, load_docker_config, parse_challenge
from kitgc.registry.client import RegistryClient
from kitgc.registry.tls import ssl_context, tls_failure
from kitgc.registry.transport import Transport, TransportOptions
from kitgc.retry import RetryPolicy
from kitgc.stores.base import ImageStore, RepositoryListing
from kitgc.stores.choose import open_store, registry_client

DOCTOR_RETRY = RetryPolicy(attempts=2, backoff=0.2)  # a preflight should answer quickly, not persist
SAMPLE_REPOSITORIES = 5  # in-scope repositories tried for one tag to read


@dataclass(frozen=True)
class Access:
    """What the registry asked of an anonymous client, and what we can answer it with."""

    challenge: Challenge | None  # None: /v2/ answered without asking (anonymous registry)
    credentials: Credentials | None
    verify: ssl.SSLContext


def _timeout(settings: Settings) -> float:
    return settings.registry_timeout.total_seconds()


async def check_registry(settings: Settings, target: Target, api_client: Any, findings: Findings) -> None:
    """Every registry check for ``target`` (not for ``openshift``: no registry request is made there)."""
    credentials: Credentials | None = None
    access: Access | None = None
    if target.kind != "openshift":
        findings.add(await tls(settings, target, findings))
        try:
            credentials = load_docker_config(settings.registry_auth_file, target.host) \
                if settings.registry_auth_file else None
        except ConfigError as exc:
            findings.config_error = True
            findings.add(Check("registry_auth", False, str(exc)))
            return
        check, access = await authenticate(settings, target, credentials)
        findings.add(check)
    if target.kind == "openshift" and api_client is None:
        findings.add(Check("registry_listing", False, "ImageStreams are read through the Kubernetes API, which "
                                                      "does not answer (see cluster_api)"))
        return
    try:
        store = open_store(settings, target.kind, target.host, target.insecure, api_client)
    except ConfigError as exc:
        findings.config_error = True
        findings.add(Check("registry_listing", False, str(exc)))
        return
    try:
        listing = await list_in_scope(store, target, findings)
        if target.kind != "openshift":
            repository = await sample(settings, target, credentials, listing, findings)
            probe = repository or (listing.repositories[0] if listing and listing.repositories else None)
            findings.add(await delete_permission(target, access, probe, _timeout(settings)))
        findings.extend(await store_checks(store))
    finally:
        await store.aclose()


async def tls(settings: Settings, target: Target, findings: Findings) -> Check:
    """A verified TLS handshake with the registry, with the trust a run uses."""
    if target.insecure:
        return Check("registry_tls", None, f"not used: plain HTTP to {target.host} (REGISTRY_INSECURE)")
    url = httpx.URL(f"https://{target.host}/")
    host, port = url.host, url.port or 443
    try:
        context = ssl_context(settings.registry_ca_file)
    except ConfigError as exc:
        findings.config_error = True
        return Check("registry_tls", False, str(exc))
    try:
        async with asyncio.timeout(_timeout(settings)):
            _reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    except TimeoutError:
        return Check("registry_tls", False, f"no TLS handshake with {target.host} within {_timeout(settings):g} s")
    except (OSError, ssl.SSLError) as exc:
        failure = tls_failure(exc)
        if failure is None:
            return Check("registry_tls", False, f"cannot connect to {target.host}: {exc.strerror or exc}")
        hint = "" if settings.registry_ca_file else "; set REGISTRY_CA_FILE to the CA of the registry's certificate"
        return Check("registry_tls", False, f"TLS with {target.host}: {failure}{hint}")
    version = writer.get_extra_info("ssl_object").version() if writer.get_extra_info("ssl_object") else "TLS"
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
    trust = f"REGISTRY_CA_FILE {settings.registry_ca_file}" if settings.registry_ca_file else "the system trust"
    return Check("registry_tls", True, f"verified {version} handshake with {target.host} ({trust})")


async def authenticate(settings: Settings, target: Target,
                       credentials: Credentials | None) -> tuple[Check, Access | None]:
    """``GET /v2/`` anonymously (what does it ask?), then as a run would, with the credentials."""
    scheme = "http" if target.insecure else "https"
    base = f"{scheme}://{target.host}"
    try:
        verify = httpx.create_ssl_context() if target.insecure else ssl_context(settings.registry_ca_file)
    except ConfigError as exc:
        return Check("registry_auth", False, str(exc)), None
    async with registry_client(settings, target.host, target.insecure, with_credentials=False) as anonymous:
        try:
            first = await anonymous.ping()
        except KitGCError as exc:
            return Check("registry_auth", False, str(exc)), None
    challenge = parse_challenge(first.headers.get("WWW-Authenticate")) if first.status == 401 else None
    access = Access(challenge, credentials, verify)
    options = TransportOptions(insecure=target.insecure, ca_file=settings.registry_ca_file, credentials=credentials,
                               concurrency=1, timeout=_timeout(settings), retry=DOCTOR_RETRY)
    transport = Transport(base, options, {"ping": 0, "token": 0, "retry": 0})
    try:
        reply = await transport.request("ping", "GET", f"{base}/v2/", "GET /v2/", ())
    except KitGCError as exc:
        return Check("registry_auth", False, str(exc)), access
    finally:
        await transport.aclose()
    how = _how(challenge, credentials, settings)
    if reply.status == 200:
        return Check("registry_auth", True, f"GET /v2/ answered 200 {how}"), access
    if reply.status == 401 and credentials is None:
        why = ("REGISTRY_AUTH_FILE is unset" if not settings.registry_auth_file
               else f"REGISTRY_AUTH_FILE has no entry for {target.host}")
        return Check("registry_auth", False, f"GET /v2/ answered 401: the registry asks for authentication and "
                                             f"{why}"), access
    if reply.status == 401:
        return Check("registry_auth", False, f"GET /v2/ answered 401 {how}: the registry refuses these credentials "
                                             "(check REGISTRY_AUTH_FILE)"), access
    return Check("registry_auth", False, f"GET /v2/ answered {reply.status} {how}"), access


def _how(challenge: Challenge | None, credentials: Credentials | None, settings: Settings) -> str:
    if credentials is None:
        return "anonymously" + (f" ({challenge.scheme} challenge)" if challenge else "")
    who = f"as {credentials.username} from REGISTRY_AUTH_FILE"
    if challenge is not None and challenge.scheme == "bearer":
        return f"{who} (Bearer token from {httpx.URL(challenge.realm).host or challenge.realm})"
    return f"{who} ({challenge.scheme.capitalize() if challenge else 'no'} authentication asked)"


async def list_in_scope(store: ImageStore, target: Target, findings: Findings) -> RepositoryListing | None:
    """The run's listing: in-scope repositories, and where they were found."""
    try:
        listing = await store.list_repositories(target.scope, known=target.known)
    except KitGCError as exc:
        findings.add(Check("registry_listing", False, str(exc)))
        return None
    source = {"catalog": "the catalog (/v2/_catalog)", "cluster kits": "the cluster's kits (the catalog is refused)",
              "imagestreams": "ImageStreams"}.get(listing.source, listing.source)
    findings.add(Check("registry_listing", True, f"{len(listing.repositories)} in-scope repositories "
                                                 f"({listing.out_of_scope} others out of scope) from {source}"))
    return listing


async def sample(settings: Settings, target: Target, credentials: Credentials | None,
                 listing: RepositoryListing | None, findings: Findings) -> str | None:
    """Tags of one in-scope repository, and HEAD and GET of one of its manifests; the repository."""
    repositories = listing.repositories[:SAMPLE_REPOSITORIES] if listing else ()
    if not repositories:
        why = "the listing failed" if listing is None else "no in-scope repository (nothing to collect yet)"
        for name in ("registry_tags", "registry_manifest_head", "registry_manifest_get"):
            findings.add(Check(name, None, f"not checked: {why}"))
        return None
    client = RegistryClient(target.host, insecure=target.insecure, ca_file=settings.registry_ca_file,
                            credentials=credentials, concurrency=1, timeout=_timeout(settings), retries=2,
                            backoff=0.2)
    try:
        for repository in repositories:
            try:
                tags = sorted(await client.tags(repository))
            except KitGCError as exc:
                findings.add(Check("registry_tags", False, str(exc)))
                return repository
            if tags:
                findings.add(Check("registry_tags", True, f"{repository}: {len(tags)} tags"))
                await _manifests(client, repository, tags[0], findings, get=target.kind != "dockerhub")
                return repository
        findings.add(Check("registry_tags", True, f"{len(repositories)} repositories read, none holds a tag"))
        for name in ("registry_manifest_head", "registry_manifest_get"):
            findings.add(Check(name, None, "not checked: no tagged manifest in scope"))
        return repositories[0]
    finally:
        await client.aclose()


async def _manifests(client: RegistryClient, repository: str, tag: str, findings: Findings, *,
                     get: bool = True) -> None:
    head_digest: str | None = None
    try:
        head = await client.head_manifest(repository, tag)
        head_digest = head.digest
        findings.add(Check("registry_manifest_head", True,
                           f"{repository}:{tag} is {head.digest} ({head.media_type or 'no media type'})"
                           if head.digest else f"{repository}:{tag}: answered without Docker-Content-Digest "
                                               "(digests come from GET)"))
    except KitGCError as exc:
        findings.add(Check("registry_manifest_head", False, str(exc)))
    if not get:  # Docker Hub counts every manifest GET as a pull against the rate limit; a run GETs
        findings.add(Check("registry_manifest_get", None, "not fetched: a GET counts against Docker Hub's pull "
                                                          "rate limit (a run GETs only what it deletes)"))
        return
    try:
        fetched = await client.get_manifest(repository, tag)
    except KitGCError as exc:
        findings.add(Check("registry_manifest_get", False, str(exc)))
        return
    if head_digest is not None and head_digest != fetched.digest:
        findings.add(Check("registry_manifest_get", False, f"{repository}:{tag}: HEAD says {head_digest}, "
                                                           f"the body is {fetched.digest}"))
        return
    findings.add(Check("registry_manifest_get", True, f"{repository}:{tag}: {fetched.digest} verified against "
                                                      f"its body ({len(fetched.body)} bytes)"))


__all__ = ["Access", "check_registry"]
