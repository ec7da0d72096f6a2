"""Safety guards: an unparsable reference or a wrong-looking cluster means exit 3."""

from __future__ import annotations

import pytest

from kitgc.errors import EXIT_ABORT, SafetyAbort
from kitgc.model import Action, ClusterSnapshot, Manifest, ManifestDecision, ObjectRef, Plan, State, UnparsableReference
from kitgc.plan.guards import check_references, check_wrong_cluster
from kitgc.plan.reasons import Reason, ReasonKind


def _plan(deleting: int, keeping: int) -> Plan:
    gone, held = (Reason(ReasonKind.UNREFERENCED),), (Reason(ReasonKind.REFERENCED),)
    ds = [ManifestDecision(Manifest("o/camel-k-kit-x", f"sha256:{i:064x}", "m"), Action.DELETE, gone)
          for i in range(deleting)]
    ks = [ManifestDecision(Manifest("o/camel-k-kit-y", f"sha256:{i + 1000:064x}", "m"), Action.KEEP, held)
          for i in range(keeping)]
    return Plan(tuple(ds + ks), (), State())


def test_unparsable_reference_aborts_naming_object_and_field() -> None:
    bad = UnparsableReference("Bad Image", ObjectRef("Pod", "p", "ns"), "spec.containers[a].image", "white space")
    with pytest.raises(SafetyAbort) as exc:
        check_references(ClusterSnapshot((), (), (), unparsable=(bad,)))
    assert exc.value.exit_code == EXIT_ABORT
    assert "Pod ns/p" in str(exc.value) and "'Bad Image'" in str(exc.value)


def test_empty_cluster_with_mass_deletion_aborts() -> None:
    with pytest.raises(SafetyAbort, match="ALLOW_EMPTY_CLUSTER"):
        check_wrong_cluster(_plan(9, 1), ClusterSnapshot((), (), (), integrations=0), allow=False)


def test_empty_cluster_guard_can_be_overridden() -> None:
    check_wrong_cluster(_plan(9, 1), ClusterSnapshot((), (), (), integrations=0), allow=True)


def test_cluster_with_integrations_passes_the_guard() -> None:
    check_wrong_cluster(_plan(9, 1), ClusterSnapshot((), (), (), integrations=3), allow=False)


def test_small_deletion_on_empty_cluster_passes_the_guard() -> None:
    check_wrong_cluster(_plan(1, 9), ClusterSnapshot((), (), (), integrations=0), allow=False)
