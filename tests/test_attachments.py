"""Attachments travel with their image: recognition, planning, order of deletion.

Pure tests over hand-built inventories; the end-to-end scenarios against the real registry
and the referrers-API personality are in test_e2e_attachments.py.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.attachments import AttachmentKind, attachment_of, under_their_images
from kitgc.imageref import parse
from kitgc.model import Action, Manifest
from kitgc.plan.reasons import ReasonKind
from kitgc.stores.order import deletion_layers
from testbed import planfactory as f
from testbed.planfactory import DAY, HOUR, IMAGE_TYPE, INDEX_TYPE

REPO = f.repo("kit-s")


def _image(label: str, *tags: str) -> Manifest:
    return f.manifest(REPO, label, *tags)


def _cosign(subject: Manifest, suffix: str = "sig", label: str | None = None) -> Manifest:
    tag = f"sha256-{subject.digest.removeprefix('sha256:')}.{suffix}"
    return f.manifest(REPO, label or f"{suffix}-of-{subject.digest}", tag)


def _referrer(subject: Manifest, artifact: str = "application/spdx+json", label: str = "sbom") -> Manifest:
    return Manifest(REPO, f.digest(label), IMAGE_TYPE, subject=subject.digest, artifact_type=artifact)


def _fallback(subject: Manifest, *referrers: Manifest) -> Manifest:
    tag = f"sha256-{subject.digest.removeprefix('sha256:')}"
    return Manifest(REPO, f.digest(f"fallback-{subject.digest}"), INDEX_TYPE, tags=(tag,),
                    children=tuple(r.digest for r in referrers))


# --- recognition ---------------------------------------------------------------------------


def test_cosign_tags_name_their_image_and_what_they_are() -> None:
    img = _image("img", "1")
    kinds = {s: attachment_of(_cosign(img, s)) for s in ("sig", "att", "sbom")}
    assert {s: (a.kind, a.subject) for s, a in kinds.items() if a} == {
        "sig": (AttachmentKind.SIGNATURE, img.digest), "att": (AttachmentKind.ATTESTATION, img.digest),
        "sbom": (AttachmentKind.SBOM, img.digest)}


def test_a_subject_field_wins_and_the_artifact_type_says_what_it_is() -> None:
    img = _image("img", "1")
    assert attachment_of(_referrer(img)).kind is AttachmentKind.SBOM
    assert attachment_of(_referrer(img, "application/vnd.cncf.notary.signature", "n")).kind is AttachmentKind.SIGNATURE
    assert attachment_of(_referrer(img, "application/vnd.example.thing", "x")).kind is AttachmentKind.REFERRER


def test_the_fallback_tag_is_an_attachment_only_on_an_index() -> None:
    img = _image("img", "1")
    assert attachment_of(_fallback(img)).kind is AttachmentKind.REFERRERS_INDEX
    plain = f.manifest(REPO, "plain", f"sha256-{img.digest.removeprefix('sha256:')}")
    assert attachment_of(plain) is None  # an image tagged like that is just an image
    for tag in ("sha256-abc.sig", "sha512-" + "a" * 64 + ".sig", "v1.sig", "latest"):
        assert attachment_of(f.manifest(REPO, tag, tag)) is None, tag


def test_attachments_are_listed_under_their_image_depth_first() -> None:
    img, other = _image("img", "1"), _image("other", "2")
    sig = _cosign(img)
    sig_of_sig = _cosign(sig, label="sig-of-sig")
    order = under_their_images([sig_of_sig, other, sig, img], lambda m: m)
    by_digest = [(m.digest, depth) for m, depth in order]
    assert by_digest.index((img.digest, 0)) + 1 == by_digest.index((sig.digest, 1))
    assert by_digest.index((sig.digest, 1)) + 1 == by_digest.index((sig_of_sig.digest, 2))
    assert (other.digest, 0) in by_digest and len(by_digest) == 4


# --- planning ------------------------------------------------------------------------------


def _set(img: Manifest) -> list[Manifest]:
    sbom = _referrer(img, label=f"sbom-{img.digest}")
    return [img, _cosign(img, "sig"), _cosign(img, "att"), sbom, _fallback(img, sbom)]


def test_everything_attached_to_a_referenced_image_is_kept_with_its_own_reason() -> None:
    img = _image("img", "1")
    every = _set(img)
    p = f.run(f.inventory(*every), f.cluster([f.ref(f.image(REPO, "img"))]), f.policy(min_age=0 * HOUR))
    assert [f.action(p, m) for m in every] == [Action.KEEP] * 5
    for m in every[1:]:
        why = f.decision(p, m).why[0]
        assert why.kind in (ReasonKind.KEPT_WITH_IMAGE, ReasonKind.INDEX_CHILD) and "kept" in str(why)
    assert str(f.decision(p, every[1]).why[0]) == f"signature of kept image {img.key.short()}"


def test_everything_attached_to_an_orphan_goes_with_it_even_when_young() -> None:
    img = _image("img", "1")
    every = _set(img)
    st_ = f.seen((img, 3 * DAY))  # the image is old; its attachments were first seen just now
    p = f.run(f.inventory(*every), f.cluster(), f.policy(min_age=DAY), st_)
    assert [f.action(p, m) for m in every] == [Action.DELETE] * 5
    assert str(f.decision(p, every[3]).why[0]) == f"SBOM of {img.key.short()}, deleted with it"


def test_a_signature_of_a_signature_of_a_kept_image_is_kept() -> None:
    img = _image("img", "1")
    sig = _cosign(img)
    sig_of_sig = _cosign(sig, label="sig-of-sig")
    p = f.run(f.inventory(sig_of_sig, sig, img), f.cluster([f.ref(f.image(REPO, "img"))]))
    assert f.action(p, sig_of_sig) is Action.KEEP and f.action(p, sig) is Action.KEEP


def test_an_attachment_whose_image_is_gone_is_garbage_after_min_age() -> None:
    missing = _image("never-pushed")
    sig = _cosign(missing)
    young = f.run(f.inventory(sig), f.cluster(), f.policy(min_age=DAY))
    old = f.run(f.inventory(sig), f.cluster(), f.policy(min_age=DAY), f.seen((sig, 2 * DAY)))
    assert f.action(young, sig) is Action.KEEP and "MIN_AGE" in f.decision(young, sig).reason
    assert f.action(old, sig) is Action.DELETE


def test_a_referenced_signature_stays_even_when_its_image_goes() -> None:
    img = _image("img", "1")
    sig = _cosign(img)
    by_digest = parse(f"{f.HOST}/{REPO}@{sig.digest}")
    p = f.run(f.inventory(img, sig), f.cluster([f.ref(by_digest)]), f.policy(min_age=0 * HOUR))
    assert f.action(p, sig) is Action.KEEP and f.decision(p, sig).referenced
    assert f.action(p, img) is Action.DELETE


def test_max_deletions_counts_attachments_and_defers_them_with_their_image() -> None:
    img = _image("img", "1")
    every = _set(img)
    p = f.run(f.inventory(*every), f.cluster(), f.policy(min_age=0 * HOUR, max_deletions=3))
    assert {f.action(p, m) for m in every} == {Action.DEFER}
    assert f.decision(p, every[1]).why[0].kind is ReasonKind.DEFERRED_WITH_IMAGE


def test_an_image_kept_as_a_child_of_an_index_keeps_its_attachments() -> None:
    child = _image("child")
    index = f.manifest(REPO, "index", "1", children=(child.digest,))
    sig = _cosign(child)
    p = f.run(f.inventory(index, child, sig), f.cluster([f.ref(f.image(REPO, "index"))]))
    assert [f.action(p, m) for m in (index, child, sig)] == [Action.KEEP] * 3


# --- order of deletion ---------------------------------------------------------------------


def test_attachments_go_before_their_image_and_the_fallback_index_before_its_referrers() -> None:
    img = _image("img", "1")
    every = _set(img)
    sig_of_sig = _cosign(every[1], label="sig-of-sig")
    layers = deletion_layers([img, *every[1:], sig_of_sig])
    position = {m.digest: i for i, layer in enumerate(layers) for m in layer}
    sbom, fallback = every[3], every[4]
    assert position[fallback.digest] < position[sbom.digest] < position[img.digest]
    assert position[sig_of_sig.digest] < position[every[1].digest] < position[img.digest]
    assert sorted(m.digest for layer in layers for m in layer) == sorted(m.digest for m in [*every, sig_of_sig])


def test_nested_indexes_go_top_down() -> None:
    leaf = _image("leaf")
    middle = f.manifest(REPO, "middle", children=(leaf.digest,))
    top = f.manifest(REPO, "top", "1", children=(middle.digest,))
    assert [[m.digest for m in layer] for layer in deletion_layers([leaf, middle, top])] == [
        [top.digest], [middle.digest], [leaf.digest]]


# --- property ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=f.plan_inputs(), picks=st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["sig", "att", "sbom"])),
                                              max_size=6))
def test_no_attachment_of_a_kept_image_is_deleted_and_none_outlives_a_deleted_one(world, picks) -> None:
    base = list(world.inventory.manifests)
    extra: list[Manifest] = []
    for n, suffix in picks:
        if base:
            subject = base[n % len(base)]
            tag = f"sha256-{subject.digest.removeprefix('sha256:')}.{suffix}"
            extra.append(Manifest(subject.repository, f.digest(f"{tag}@{subject.repository}"), IMAGE_TYPE, (tag,)))
    world.inventory = replace(world.inventory, manifests=tuple(base + extra))
    p = world.plan()
    actions = {d.manifest.key: d.action for d in p.manifests}
    for d in p.manifests:
        found = attachment_of(d.manifest)
        subject = d.manifest.key.child(found.subject) if found else None
        if subject is None or subject not in actions:
            continue
        if actions[subject] is not Action.DELETE:
            assert d.action is not Action.DELETE, d
        elif not d.referenced:
            assert d.action is Action.DELETE, d
    assert len(p.manifest_deletions) <= world.policy.max_deletions
