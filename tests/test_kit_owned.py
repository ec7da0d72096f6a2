"""What a kit owns speaks for the kit only where it holds the kit's own image (S2I on OpenShift)."""

from __future__ import annotations

from kitgc.model import Action, ObjectRef
from testbed import planfactory as f
from testbed.planfactory import DAY, HOUR

KIT = ObjectRef("IntegrationKit", "kit-a", "camel-k")


def test_an_s2i_kits_build_config_does_not_keep_the_unused_kit_alive() -> None:
    m = f.manifest(f.repo("kit-a"), "a1", "1")
    bc = ObjectRef("BuildConfig.build.openshift.io", "camel-k-kit-a", "camel-k")
    kit = f.kit("kit-a", image=f.image(m.repository, "a1"), age=9 * DAY)
    snap = f.cluster([f.ref(f.image(m.repository, tag="1"), bc.kind, bc.name, bc.namespace)], [kit], owners={bc: KIT})
    plan = f.run(f.inventory(m), snap, f.policy(min_age=0 * HOUR))
    assert f.kit_decision(plan, kit).action is Action.DELETE
    assert f.action(plan, m) is Action.DELETE


def test_a_running_build_owned_by_a_kit_still_keeps_the_base_it_builds_on() -> None:
    base = f.manifest(f.repo("kit-base"), "b1", "1")
    build = ObjectRef("Build", "kit-a-build", "camel-k")
    kit = f.kit("kit-a", age=9 * DAY)
    snap = f.cluster([f.ref(f.image(base.repository, "b1"), "Build", build.name, build.namespace)], [kit],
                     owners={build: KIT})
    plan = f.run(f.inventory(base), snap, f.policy(min_age=0 * HOUR))
    assert f.action(plan, base) is Action.KEEP and f.decision(plan, base).referenced
