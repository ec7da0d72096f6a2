"""The executor: order of deletions, failure isolation, dry run.

These use small recording deleters (the executor's own one-method protocols); the
end-to-end tests drive it against the real registry and the emulated API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from kitgc.errors import DeletionDisabled, RegistryError
from kitgc.execute import announce, execute
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
