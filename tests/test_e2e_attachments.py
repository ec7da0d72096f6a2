"""End to end: signatures, attestations and SBOMs travel with their kit image.

Issue "Signatures, attestations and SBOMs travel with their image": what cosign and OCI 1.1
clients attach to a kit image (testbed.attachments) is kept with a kept image, deleted with
a deleted one (attachments before their subject, the fallback index before the referrers it
lists), and garbage once older than MIN_AGE when its subject is gone. Against the real
Distribution registry (no referrers API: only the ``sha256-<hex>`` fallback index finds an
untagged referrer) and against the personality that has the API (testbed.referrers_proxy).

Every test runs ``kitgc`` for real (DRY_RUN=false, MIN_AGE=0 unless said) and looks at what
is LEFT in the registry; deletion order is read from the log of a proxy the run goes through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitgc.metrics import JOB
from testbed import objects
from testbed.attachments import AttachmentSet, cosign_tag, push_attachment_set, push_cosign
from testbed.faultproxy import FaultProxy
from testbed.pushgateway import Pushgateway
from testbed.referrers_proxy import ReferrersProxy
from testbed.world import World, events_named

CLUSTER = "e2e-attachments"
ATTACHMENT_METRICS = ("kitgc_attachments_scanned", "kitgc_attachments_deleted")


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


# --- scenes ------------------------------------------------------------------------------


def _image(world: World, seed: str, *, used: bool, address: str | None = None) -> tuple[str, str]:
    """A kit image tagged ``1``; ``used``: a Deployment runs it (named at ``address``)."""
    repo = world.repo(objects.kit_name(f"{world.org}-{seed}"))
    digest = world.push(repo, "1")
    if used:
        image = f"{address or world.registry.address}/{repo}@{digest}"
        world.add(objects.deployment(f"app-{seed}", "shop", images=[image]))
    return repo, digest


def _signed(world: World, seed: str, *, used: bool, base_url: str | None = None, address: str | None = None,
            fallback_index: bool = True) -> AttachmentSet:
    """A kit image with a cosign .sig, .att and .sbom, an OCI 1.1 SBOM referrer and
    (``fallback_index``) the fallback index listing it, pushed through ``base_url``."""
    repo, subject = _image(world, seed, used=used, address=address)
    return push_attachment_set(base_url or world.registry.url, repo, subject, fallback_index=fallback_index,
                               client=world.http)


def _left(world: World, repo: str, digests: tuple[str, ...] | list[str]) -> list[str]:
    return [d for d in digests if world.exists(repo, d)]


def _deletions(proxy: FaultProxy, repo: str) -> list[str]:
    """Digests of ``repo`` in the order the registry accepted their DELETE (first time)."""
    order: list[str] = []
    for seen in proxy.requests("DELETE", rf"/v2/{re.escape(repo)}/manifests/sha256:[0-9a-f]{{64}}"):
        digest = seen.path.rsplit("/", 1)[1]
        if seen.status == 202 and digest not in order:
            order.append(digest)
    return order


def _assert_attachments_first(order: list[str], s: AttachmentSet) -> None:
    names = {s.subject: "subject", s.signature: ".sig", s.attestation: ".att", s.sbom: ".sbom",
             s.referrer: "referrer", s.index: "fallback index"}
    shown = [names.get(d, d) for d in order]
    assert sorted(order) == sorted(s.all), f"DELETEs: {shown}"
    for digest in s.attachments:
        assert order.index(digest) < order.index(s.subject), f"{names[digest]} after its subject: {shown}"
    if s.index is not None:
        assert order.index(s.index) < order.index(s.referrer), f"fallback index after its referrer: {shown}"


def _report(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["repository"], m["digest"]): m for m in json.loads(path.read_text())["manifests"]}


def _referrers_asked(proxy: FaultProxy, repo: str, digest: str | None = None) -> list[str]:
    path = rf"/v2/{re.escape(repo)}/referrers/" + (re.escape(digest) if digest else ".*")
    return [s.path for s in proxy.requests("GET", path)]


# --- against Distribution: cosign tags and the fallback index ----------------------------


def test_attachments_of_a_used_image_all_stay(world: World) -> None:
    s = _signed(world, "used", used=True)
    code, events = world.run(DRY_RUN="false")
    assert code == 0, events[-3:]
    assert _left(world, s.repo, s.all) == list(s.all)
    assert world.tags(s.repo) == sorted(["1", *s.tags])
    assert not list(events_named(events, "deleted"))


def _collect_orphan(world: World, proxy: FaultProxy) -> AttachmentSet:
    """Scenario (b): an orphan kit image and its five attachments, collected through ``proxy``."""
    s = _signed(world, "orphan", used=False)
    code, events = world.run(DRY_RUN="false", REGISTRY_ADDRESS=proxy.address)
    assert code == 0, events[-3:]
    return s


def test_attachments_of_an_orphan_all_go_before_it(world: World, proxy: FaultProxy) -> None:
    s = _collect_orphan(world, proxy)
    assert _left(world, s.repo, s.all) == []
    assert world.tags(s.repo) == []
    _assert_attachments_first(_deletions(proxy, s.repo), s)
    asked = _referrers_asked(proxy, s.repo)  # Distribution answers 404: probed at most once, then not again
    assert len(asked) <= 1, asked


@pytest.mark.parametrize(("min_age", "kept"), [("0", False), ("24h", True)])
def test_signature_of_a_missing_image_is_garbage_after_min_age(
    world: World, tmp_path: Path, min_age: str, kept: bool
) -> None:
    repo, used = _image(world, "dangling", used=True)
    missing = objects.digest(f"{world.org}-never-pushed")
    sig = push_cosign(world.registry.url, repo, missing, "sig", client=world.http)
    report = tmp_path / "report.json"
    code, events = world.run(DRY_RUN="false", MIN_AGE=min_age, REPORT_FILE=str(report))
    assert code == 0, events[-3:]
    assert world.exists(repo, used)
    assert world.exists(repo, sig) is kept
    entry = _report(report)[(repo, sig)]
    if kept:
        assert entry["action"] == "keep" and "MIN_AGE" in entry["reason"], entry
        assert world.tags(repo) == sorted(["1", cosign_tag(missing)])
    else:
        assert (entry["action"], entry["deleted"]) == ("delete", True), entry
        assert world.tags(repo) == ["1"]


def test_dry_run_lists_the_attachments_that_would_go(world: World, tmp_path: Path) -> None:
    gone = _signed(world, "orphan", used=False)
    kept = _signed(world, "used", used=True)
    report = tmp_path / "report.json"
    code, events = world.run(REPORT_FILE=str(report))  # DRY_RUN defaults to true
    assert code == 0, events[-3:]
    entries = _report(report)
    assert {d: (entries[(gone.repo, d)]["action"], entries[(gone.repo, d)]["deleted"]) for d in gone.all} == \
        dict.fromkeys(gone.all, ("delete", False))
    assert {d: entries[(kept.repo, d)]["action"] for d in kept.all} == dict.fromkeys(kept.all, "keep")
    assert {e["digest"] for e in events_named(events, "would_delete")} == set(gone.all)
    assert _left(world, gone.repo, gone.all) == list(gone.all)
    assert _left(world, kept.repo, kept.all) == list(kept.all)


def test_signature_of_a_signature_of_a_used_image_is_kept(world: World) -> None:
    repo, subject = _image(world, "chain", used=True)
    sig = push_cosign(world.registry.url, repo, subject, client=world.http)
    sig_of_sig = push_cosign(world.registry.url, repo, sig, client=world.http)
    code, events = world.run(DRY_RUN="false")
    assert code == 0, events[-3:]
    assert _left(world, repo, [subject, sig, sig_of_sig]) == [subject, sig, sig_of_sig]
    assert world.tags(repo) == sorted(["1", cosign_tag(subject), cosign_tag(sig)])


def test_signature_chain_of_an_orphan_goes_outermost_first(world: World, proxy: FaultProxy) -> None:
    repo, subject = _image(world, "chain", used=False)
    sig = push_cosign(world.registry.url, repo, subject, client=world.http)
    sig_of_sig = push_cosign(world.registry.url, repo, sig, client=world.http)
    code, events = world.run(DRY_RUN="false", REGISTRY_ADDRESS=proxy.address)
    assert code == 0, events[-3:]
    assert _left(world, repo, [subject, sig, sig_of_sig]) == []
    assert _deletions(proxy, repo) == [sig_of_sig, sig, subject]


# --- against a registry with the referrers API (no fallback index) ----------------------


def test_referrer_only_the_api_finds_stays_with_its_used_image(
    world: World, referrers_proxy: ReferrersProxy
) -> None:
    s = _signed(world, "used", used=True, base_url=referrers_proxy.url, address=referrers_proxy.address,
                fallback_index=False)
    assert [d["digest"] for d in referrers_proxy.known(s.repo, s.subject)] == [s.referrer]
    code, events = world.run(DRY_RUN="false", REGISTRY_ADDRESS=referrers_proxy.address)
    assert code == 0, events[-3:]
    assert _left(world, s.repo, s.all) == list(s.all)
    assert _referrers_asked(referrers_proxy, s.repo, s.subject), "the referrers API was never asked"


def test_referrer_only_the_api_finds_goes_with_its_orphan(world: World, referrers_proxy: ReferrersProxy) -> None:
    s = _signed(world, "orphan", used=False, base_url=referrers_proxy.url, fallback_index=False)
    code, events = world.run(DRY_RUN="false", REGISTRY_ADDRESS=referrers_proxy.address)
    assert code == 0, events[-3:]
    assert _left(world, s.repo, s.all) == [], "left: referrer found only through GET /v2/<name>/referrers"
    assert world.tags(s.repo) == []
    _assert_attachments_first(_deletions(referrers_proxy, s.repo), s)


# --- metrics -----------------------------------------------------------------------------


def test_attachment_metrics_count_what_was_scanned_and_deleted(
    world: World, proxy: FaultProxy, pushgateway: Pushgateway
) -> None:
    world.env.update(PUSHGATEWAY_URL=pushgateway.url, CLUSTER_NAME=CLUSTER)
    kept = _signed(world, "used", used=True)  # five attachments scanned and kept
    gone = _collect_orphan(world, proxy)  # scenario (b): five scanned and deleted
    assert _left(world, kept.repo, kept.all) == list(kept.all)
    assert _left(world, gone.repo, gone.all) == []
    scrape = pushgateway.scrape()
    got = {name: scrape.value(name, job=JOB, instance=CLUSTER) for name in ATTACHMENT_METRICS}
    assert got == {"kitgc_attachments_scanned": 10, "kitgc_attachments_deleted": 5}
