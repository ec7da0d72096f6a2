"""The executor: order of deletions, failure isolation, dry run.

These use small recording deleters (the executor's own one-method protocols); the
end-to-end tests drive it against the real registry and the emulated API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from kitgc.errors import DeletionDisabled, HeldByAnother, ManifestImmutable, RegistryError
from kitgc.execute import KIT_DELETE_CONCURRENCY, announce, execute
from kitgc.identity import KitKey, ManifestKey
from kitgc.imageref import parse
from kitgc.model import Action, Kit, KitDecision, Manifest, ManifestDecision, Plan, State
from kitgc.plan.reasons import Reason, ReasonKind
from kitgc.stores.base import DeleteOutcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


class Recorder:
    def __init__(self, fail: set[str] | None = None, disabled: bool = False, fail_kits: set[str] | None = None):
        self.calls: list[str] = []
        self.fail = fail or set()
        self.disabled = disabled
        self.fail_kits = fail_kits or set()

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        self.calls.append(f"manifest {manifest.key}")
        if self.disabled:
            raise DeletionDisabled("deletion is disabled on the registry", status=405, code="UNSUPPORTED")
        if manifest.digest in self.fail:
            raise RegistryError("boom", status=500)
        return DeleteOutcome.DELETED

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        """Plain manifests first: the executor must follow the store's order, whatever it is."""
        return [[m for m in manifests if not m.is_index], [m for m in manifests if m.is_index]]

    def delete_kit(self, namespace: str, name: str) -> bool:
        self.calls.append(f"kit {namespace}/{name}")
        if name in self.fail_kits:
            raise RuntimeError("api down")
        return True


UNREFERENCED = (Reason(ReasonKind.UNREFERENCED),)


def _delete(repo: str, digest: str, children: tuple[str, ...] = (), kit: str | None = None) -> ManifestDecision:
    media = "application/vnd.oci.image.index.v1+json" if children else "application/vnd.oci.image.manifest.v1+json"
    kits = (KitKey("camel-k", kit),) if kit else ()
    return ManifestDecision(Manifest(repo, digest, media, children=children), Action.DELETE, UNREFERENCED, kits=kits)


def _kit(name: str, digest: str) -> KitDecision:
    kit = Kit("camel-k", name, "platform", "Ready", NOW, image=parse(f"r.io/camel-k/camel-k-{name}@{digest}"))
    return KitDecision(kit, Action.DELETE, Reason(ReasonKind.UNUSED))


async def test_kit_objects_are_deleted_before_their_images() -> None:
    rec = Recorder()
    plan = Plan((_delete("camel-k/camel-k-kit-a", D1, kit="kit-a"),), (_kit("kit-a", D1),), State())
    result = await execute(plan, rec, rec, rec)
    assert rec.calls == ["kit camel-k/kit-a", f"manifest camel-k/camel-k-kit-a@{D1}"]
    assert result.kits_deleted == (KitKey("camel-k", "kit-a"),)
    assert result.manifests_deleted == (ManifestKey("camel-k/camel-k-kit-a", D1),)


async def test_image_of_a_kit_that_could_not_be_deleted_is_left_alone() -> None:
    rec = Recorder(fail_kits={"kit-a"})
    plan = Plan((_delete("camel-k/camel-k-kit-a", D1, kit="kit-a"), _delete("camel-k/camel-k-kit-b", D2)),
                (_kit("kit-a", D1),), State())
    result = await execute(plan, rec, rec, rec)
    assert f"manifest camel-k/camel-k-kit-a@{D1}" not in rec.calls
    assert result.manifests_deleted == (ManifestKey("camel-k/camel-k-kit-b", D2),)
    assert len(result.failures) == 1 and "IntegrationKit camel-k/kit-a" in result.failures[0].target


async def test_deletions_follow_the_batches_the_store_orders() -> None:
    rec = Recorder()
    repo = "camel-k/camel-k-kit-a"
    plan = Plan((_delete(repo, D1, children=(D2,)), _delete(repo, D2)), (), State())
    await execute(plan, rec, rec, rec, concurrency=1)
    assert rec.calls == [f"manifest {repo}@{D2}", f"manifest {repo}@{D1}"]


async def test_one_failed_delete_does_not_stop_the_rest() -> None:
    rec = Recorder(fail={D1})
    plan = Plan(tuple(_delete(f"camel-k/camel-k-kit-{i}", d) for i, d in enumerate((D1, D2, D3))), (), State())
    result = await execute(plan, rec, rec, rec)
    assert len(rec.calls) == 3
    assert len(result.manifests_deleted) == 2
    assert [f.target for f in result.failures] == [f"camel-k/camel-k-kit-0@{D1}"]


async def test_deletion_disabled_stops_the_sweep_and_is_reported_once() -> None:
    rec = Recorder(disabled=True)
    plan = Plan(tuple(_delete(f"camel-k/camel-k-kit-{i}", d) for i, d in enumerate((D1, D2, D3))), (), State())
    result = await execute(plan, rec, rec, rec, concurrency=1)
    assert result.deletion_disabled
    assert len(rec.calls) == 1
    assert len(result.failures) == 1


async def test_dry_run_makes_no_write_call() -> None:
    rec = Recorder()
    plan = Plan((_delete("camel-k/camel-k-kit-a", D1),), (_kit("kit-a", D1),), State())
    result = announce(plan)
    assert rec.calls == []
    assert result.manifests_deleted == () and result.kits_deleted == ()


async def test_stop_request_prevents_further_deletions() -> None:
    rec = Recorder()
    plan = Plan(tuple(_delete(f"camel-k/camel-k-kit-{i}", d) for i, d in enumerate((D1, D2, D3))), (), State())
    result = await execute(plan, rec, rec, rec, should_stop=lambda: True)
    assert rec.calls == []
    assert result.manifests_deleted == ()


async def test_kits_are_deleted_a_few_at_a_time_and_recorded_in_the_plans_order() -> None:
    import threading
    import time

    class Slow(Recorder):
        def __init__(self) -> None:
            super().__init__(fail_kits={"kit-3"})
            self.lock, self.in_flight, self.most = threading.Lock(), 0, 0

        def delete_kit(self, namespace: str, name: str) -> bool:
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            time.sleep(0.02 if name != "kit-0" else 0.1)  # the first kit answers last
            try:
                return super().delete_kit(namespace, name)
            finally:
                with self.lock:
                    self.in_flight -= 1

    rec = Slow()
    kits = tuple(_kit(f"kit-{i}", "sha256:" + f"{i:x}" * 64) for i in range(12))
    result = await execute(Plan((), kits, State()), rec, rec, rec)
    assert 1 < rec.most <= KIT_DELETE_CONCURRENCY  # in parallel, and never more than the bound
    assert [k.name for k in result.kits_deleted] == [f"kit-{i}" for i in range(12) if i != 3]  # plan order
    assert [f.target for f in result.failures] == ["IntegrationKit camel-k/kit-3"]


async def test_a_stop_request_during_kit_deletions_leaves_the_rest_and_their_images() -> None:
    calls = 0

    def stop_after_two() -> bool:
        return calls >= 2

    class Counting(Recorder):
        def delete_kit(self, namespace: str, name: str) -> bool:
            nonlocal calls
            calls += 1
            return super().delete_kit(namespace, name)

    rec = Counting()
    digests = ["sha256:" + f"{i:x}" * 64 for i in range(8)]
    kits = tuple(_kit(f"kit-{i}", d) for i, d in enumerate(digests))
    images = tuple(_delete(f"camel-k/camel-k-kit-{i}", d, kit=f"kit-{i}") for i, d in enumerate(digests))
    result = await execute(Plan(images, kits, State()), rec, rec, rec, should_stop=stop_after_two)
    deleted = {k.name for k in result.kits_deleted}
    assert 2 <= len(deleted) <= 2 + KIT_DELETE_CONCURRENCY - 1  # at most the deletions already in flight
    assert len(deleted) < len(kits)
    assert {m.repository.rsplit("-", 1)[1] for m in result.manifests_deleted} <= {n.rsplit("-", 1)[1] for n in deleted}


# --- refusals that are not failures, and refusals that wait for another manifest --------


class Holding(Recorder):
    """A registry that refuses a manifest while a manifest listed in ``holders`` still exists
    (Zot, Harbor, GCR refuse an index's child while the index exists), refuses ``immutable``
    ones for good, and can only delete ``whole_repo`` ones with their repository."""

    def __init__(self, holders: dict[str, str], immutable: set[str] = frozenset(),  # type: ignore[assignment]
                 whole_repo: set[str] = frozenset(), batches: list[list[str]] | None = None):  # type: ignore[assignment]
        super().__init__()
        self.holders = holders  # digest -> digest of what holds it
        self.immutable = immutable
        self.whole_repo = whole_repo
        self.order = batches
        self.gone: set[str] = set()

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        self.calls.append(manifest.digest)
        holder = self.holders.get(manifest.digest)
        if holder is not None and holder not in self.gone:
            raise HeldByAnother(f"DELETE {manifest.key}: HTTP 405 DENIED: referenced by {holder}", status=405,
                                code="DENIED")
        if manifest.digest in self.immutable:
            raise ManifestImmutable(f"DELETE {manifest.key}: HTTP 409 TAG_IMMUTABLE", status=409,
                                    code="TAG_IMMUTABLE")
        if manifest.digest in self.whole_repo:
            return DeleteOutcome.WITH_REPOSITORY
        self.gone.add(manifest.digest)
        return DeleteOutcome.DELETED

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        if self.order is None:
            return [list(manifests)]
        by_digest = {m.digest: m for m in manifests}
        return [[by_digest[d] for d in batch if d in by_digest] for batch in self.order]


D4, D5 = ("sha256:" + c * 64 for c in "45")
REPO = "camel-k/camel-k-kit-a"


async def test_a_manifest_held_by_one_deleted_later_is_retried_after_the_batches() -> None:
    # the store's order put the child first (a wrong or unknown order): the retry round fixes it
    reg = Holding({D2: D1}, batches=[[D2], [D1]])
    plan = Plan((_delete(REPO, D1), _delete(REPO, D2)), (), State())
    result = await execute(plan, reg, reg, reg, concurrency=1)
    assert reg.calls == [D2, D1, D2]
    assert set(result.manifests_deleted) == {ManifestKey(REPO, D1), ManifestKey(REPO, D2)}
    assert result.failures == ()


async def test_held_manifests_are_retried_in_rounds_while_rounds_make_progress() -> None:
    # a chain D3 held by D2 held by D1, all planned child-first: one more level per round
    reg = Holding({D3: D2, D2: D1}, batches=[[D3], [D2], [D1]])
    plan = Plan((_delete(REPO, D1), _delete(REPO, D2), _delete(REPO, D3)), (), State())
    result = await execute(plan, reg, reg, reg, concurrency=1)
    assert len(result.manifests_deleted) == 3 and result.failures == ()
    assert reg.calls.count(D3) == 3  # first pass, round 1 (D2 still there), round 2


async def test_a_manifest_held_by_one_that_stays_is_a_failure_naming_the_holder() -> None:
    kept_index = D5  # not in the plan: it is kept, so its child can never go
    reg = Holding({D2: kept_index})
    plan = Plan((_delete(REPO, D1), _delete(REPO, D2)), (), State())
    result = await execute(plan, reg, reg, reg, concurrency=1)
    assert result.manifests_deleted == (ManifestKey(REPO, D1),)
    assert [f.target for f in result.failures] == [f"{REPO}@{D2}"]
    assert kept_index in result.failures[0].message and "held by another manifest" in result.failures[0].message
    assert reg.calls.count(D2) == 2  # the first round made no progress: no further rounds


async def test_retry_rounds_are_bounded() -> None:
    # five levels, all planned child-first: three rounds free three levels, the rest fail
    d6 = "sha256:" + "6" * 64
    chain = [D1, D2, D3, D4, D5, d6]
    reg = Holding({chain[i + 1]: chain[i] for i in range(5)}, batches=[[d] for d in reversed(chain)])
    plan = Plan(tuple(_delete(REPO, d) for d in chain), (), State())
    result = await execute(plan, reg, reg, reg, concurrency=1)
    assert len(result.manifests_deleted) == 4  # D1 in the first pass, then one level per round
    assert {f.target for f in result.failures} == {f"{REPO}@{D5}", f"{REPO}@{d6}"}


async def test_an_immutable_manifest_is_kept_and_recorded_not_a_failure() -> None:
    reg = Holding({}, immutable={D1})
    plan = Plan((_delete(REPO, D1), _delete(REPO, D2)), (), State())
    result = await execute(plan, reg, reg, reg)
    assert result.immutable == (ManifestKey(REPO, D1),)
    assert result.manifests_deleted == (ManifestKey(REPO, D2),)
    assert result.failures == ()
    assert reg.calls.count(D1) == 1  # never retried within the run


async def test_a_manifest_deleted_only_with_its_repository_is_recorded_apart() -> None:
    reg = Holding({}, whole_repo={D1})
    plan = Plan((_delete(REPO, D1), _delete(REPO, D2)), (), State())
    result = await execute(plan, reg, reg, reg)
    assert result.with_repository == (ManifestKey(REPO, D1),)
    assert result.manifests_deleted == (ManifestKey(REPO, D2),)
    assert result.failures == ()


async def test_deletion_disabled_during_retries_stops_them() -> None:
    class DisabledOnRetry(Holding):
        async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
            if manifest.digest in self.calls:
                self.calls.append(manifest.digest)
                raise DeletionDisabled("deletion is disabled on the registry", status=405, code="UNSUPPORTED")
            return await super().delete_manifest(manifest)

    reg = DisabledOnRetry({D2: D5, D3: D5})
    plan = Plan((_delete(REPO, D2), _delete(REPO, D3)), (), State())
    result = await execute(plan, reg, reg, reg, concurrency=1)
    assert result.deletion_disabled
    assert reg.calls == [D2, D3, D2]  # the first retry met the refusal: nothing after it
    assert len(result.failures) == 1
