"""Bad input: never a crash, always the contract's exit code and one clear line.

Hypothesis throws arbitrary and near-valid text at the reference parser, the duration
parser (through the configuration, as the CLI reads it), the ``.dockerconfigjson`` reader,
the remembered-children decoder, and arbitrary bodies at the registry client's catalog and
tag-list readers. End to end: an image reference the cluster holds that cannot be parsed
stops the run (exit 3, one line naming the object), an enormous catalog answer is cut off at
a bounded size (the process stays small), an unreadable CA file is exit 2 in one line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc import pending
from kitgc.config import load
from kitgc.errors import ConfigError, RegistryError
from kitgc.imageref import InvalidReference, parse
from kitgc.registry.auth import Credentials, load_docker_config
from kitgc.registry.client import RegistryClient
from kitgc.registry.transport import MAX_BODY
from testbed import objects
from testbed.faultproxy import Fault, FaultProxy
from testbed.figures import Figures
from testbed.world import World, events_named

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])
H = "sha256:" + "a" * 64
PIECES = ["registry.example.com", "host:5000", "[::1]:5000", "camel-k", "camel-k-kit-abc", "a", "A", "_", "-", "..",
          ":", "/", "@", H, "sha256:", "sha512:" + "b" * 128, "latest", "1.0", " ", "\n", "\x00", "é", "//", "@@"]


def one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text and "\r" not in text


# --- the reference parser ----------------------------------------------------------------

@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join) | st.text(max_size=300))
def test_reference_parser_answers_a_reference_or_one_clear_error(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference as exc:
        assert one_line(str(exc))
        return
    assert ref.repository and (ref.digest is None or ref.digest.count(":") == 1)
    assert parse(str(ref)) == ref, "what it understood, it understands again"


# --- the duration parser, as the configuration reads it ------------------------------------

@FUZZ
@given(st.text(alphabet="0123456789dhms -+.x", max_size=14) | st.text(max_size=30))
def test_duration_is_a_duration_or_a_config_error_naming_the_variable(text: str) -> None:
    for var in ("MIN_AGE", "REGISTRY_TIMEOUT", "LEASE_DURATION", "KUBE_TIMEOUT"):
        try:
            value = getattr(load({var: text}), var.lower() if var != "MIN_AGE" else "min_age")
        except ConfigError as exc:
            assert var in str(exc) and one_line(str(exc))
        else:
            assert value.total_seconds() >= (0 if var == "MIN_AGE" or not text.strip() else 1)


# --- the .dockerconfigjson reader ------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=12)
AUTH = st.builds(lambda u, p: __import__("base64").b64encode(f"{u}:{p}".encode()).decode(),
                 st.text(max_size=10), st.text(max_size=10))
ENTRY = st.fixed_dictionaries({}, optional={"auth": AUTH | JSON, "username": JSON, "password": JSON,
                                            "identitytoken": JSON})
DOCKER_CONFIG = st.fixed_dictionaries({"auths": st.dictionaries(st.sampled_from(
    ["registry:5000", "https://registry:5000/v1/", "other", "REGISTRY:5000"]), ENTRY | JSON, max_size=3)}) | JSON


@FUZZ
@given(st.binary(max_size=200) | DOCKER_CONFIG.map(lambda d: json.dumps(d).encode()))
def test_docker_config_gives_credentials_none_or_one_config_error(tmp_path_factory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("auth") / "config.json"
    path.write_bytes(content)
    try:
        found = load_docker_config(str(path), "registry:5000")
    except ConfigError as exc:
        assert "REGISTRY_AUTH_FILE" in str(exc) and one_line(str(exc))
        return
    assert found is None or isinstance(found, Credentials)


@FUZZ
@given(st.text(max_size=200) | JSON.map(json.dumps))
def test_remembered_children_that_cannot_be_read_are_forgotten_not_fatal(text: str) -> None:
    decoded = pending.decode(text)
    assert all(isinstance(r, str) and isinstance(ds, set) for r, ds in decoded.items())
    assert pending.decode(pending.encode(decoded)) == decoded


# --- garbage catalog and tag answers -----------------------------------------------------

BODIES = (st.binary(max_size=200) | JSON.map(lambda d: json.dumps(d).encode())
          | st.sampled_from([b'{"repositories": null}', b'{"tags": null}', b'{"tags": [1, 2]}', b"[" * 5000,
                             b'{"repositories": ["a", {"b": 1}]}', b'{"tags": "1"}', b"\xff\xfe"]))


@FUZZ
@given(BODIES, st.sampled_from(["catalog", "tags"]), st.sampled_from([200, 200, 404, 500]))
def test_garbage_catalog_and_tag_answers_are_names_or_one_registry_error(body: bytes, what: str, status: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    async def call() -> list[str]:
        async with RegistryClient("registry:5000", transport=httpx.MockTransport(answer), retries=1) as client:
            return await (client.catalog() if what == "catalog" else client.tags("o/camel-k-kit-a"))

    try:
        names = asyncio.run(call())
    except RegistryError as exc:
        assert one_line(str(exc))
        return
    assert status == 200 and all(isinstance(n, str) for n in names)


# --- end to end --------------------------------------------------------------------------

@pytest.fixture
def world(registry, kube, org):
    w = World(registry, kube, org)
    w.anchor()
    w.env.update(DRY_RUN="false")
    yield w
    w.http.close()


@pytest.mark.parametrize("image", ["Registry/UPPER/case:1", "repo@sha256:short", "a b", "x:y:z", "/leading/slash",
                                   "camel-k/camel-k-kit-a@sha256:" + "g" * 64])
def test_unparsable_reference_in_the_cluster_stops_the_run_naming_it(world: World, figures: Figures,
                                                                      image: str) -> None:
    repo = world.repo(objects.kit_name("fuzz"))
    digest = world.push(repo, "1")
    world.add(objects.pod("odd", "shop", images=[image]))
    code, events = world.run()
    figures.run(wrongful=0 if world.exists(repo, digest) else 1)
    assert code == 3 and world.exists(repo, digest)
    aborted = next(events_named(events, "run_aborted"))
    assert "Pod shop/odd" in aborted["error"] and one_line(aborted["error"])


def test_enormous_catalog_answer_is_cut_off_with_bounded_memory(world: World, registry, figures: Figures) -> None:
    repo = world.repo(objects.kit_name("huge"))
    digest = world.push(repo, "1")
    with FaultProxy(registry.url) as proxy:
        proxy.add(Fault("huge", "GET", r"/v2/_catalog", size=256 * 1024 * 1024))
        env = {**world.env, "REGISTRY_ADDRESS": proxy.address, "REGISTRY_ORGANIZATION": world.org,
               "REGISTRY_INSECURE": "true", "MIN_AGE": "0", "LOG_FORMAT": "json"}
        # VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec and so would include the
        # forking pytest process's own (large, late in the suite) resident set.
        wrapper = ("import atexit, json, runpy, sys\n"
                   "def hwm():\n"
                   "    for line in open('/proc/self/status'):\n"
                   "        if line.startswith('VmHWM:'):\n"
                   "            return int(line.split()[1])\n"
                   "atexit.register(lambda: print(json.dumps({'maxrss_kb': hwm()}), file=sys.stderr))\n"
                   "runpy.run_module('kitgc', run_name='__main__')\n")
        import os

        proc = subprocess.run([sys.executable, "-c", wrapper], env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=120)
        figures.add_faults(proxy.injected)
    figures.run(wrongful=0 if world.exists(repo, digest) else 1)
    rss_mb = json.loads(proc.stderr.strip().splitlines()[-1])["maxrss_kb"] / 1024
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 1
    failed = next(events_named(events, "run_failed"))
    assert f"larger than {MAX_BODY} bytes" in failed["error"] and one_line(failed["error"])
    assert world.exists(repo, digest)
    assert rss_mb < 200, f"peak RSS {rss_mb:.0f} MiB for a 256 MiB answer"
    figures.notes["enormous_catalog_peak_rss_mib"] = round(rss_mb)


BAD_PEM = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("content", [b"not a certificate", BAD_PEM, b""])
def test_unreadable_ca_file_is_exit_2_in_one_line(world: World, tmp_path: Path, content: bytes) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(content)
    code, events = world.run(REGISTRY_CA_FILE=str(ca), REGISTRY_INSECURE="false")
    assert code == 2
    errors = [e for e in events if e.get("level") == "error"]
    assert len(errors) == 1 and "REGISTRY_CA_FILE" in errors[0]["error"] and one_line(errors[0]["error"])


def test_ca_file_that_is_a_directory_is_exit_2_in_one_line(world: World, tmp_path: Path) -> None:
    code, events = world.run(REGISTRY_CA_FILE=str(tmp_path), REGISTRY_INSECURE="false")
    assert code == 2
    errors = [e for e in events if e.get("level") == "error"]
    assert len(errors) == 1 and "REGISTRY_CA_FILE" in errors[0]["error"]


async def test_endless_catalog_pages_stop_at_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import kitgc.registry.client as client_module

    monkeypatch.setattr(client_module, "MAX_PAGES", 50)
    served = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        served[0] += 1
        n = served[0]
        return httpx.Response(200, json={"repositories": [f"r{n}"]},
                              headers={"Link": f'</v2/_catalog?last=r{n}&n=1>; rel="next"'})

    async with RegistryClient("registry:5000", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(RegistryError, match="pages"):
            await client.catalog()
    assert served[0] == 50


def test_endless_continue_tokens_fail_closed_at_a_bound(kube, monkeypatch: pytest.MonkeyPatch) -> None:
    import kitgc.cluster.reader as reader_module
    from kitgc.cluster import sources
    from kitgc.errors import SourceUnavailable

    monkeypatch.setattr(reader_module, "MAX_PAGES", 20)
    for i in range(30):
        kube.add(objects.pod(f"p{i}", images=["busybox"]))
    reader = reader_module.ClusterReader(kube.client(), page_size=1, sources=(sources.PODS,))
    with pytest.raises(SourceUnavailable, match="pages"):
        reader.snapshot()
