"""``kitgc explain``: the chain from an image to what needs it, and never a write.

Chains are checked on plans the real planner makes; the read-only promise is checked end to
end with every side effect switched on in the environment (DRY_RUN=false, a Pushgateway, a
report file), against the real registry and the emulated API.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest

from kitgc.cli import main
from kitgc.imageref import InvalidReference
from kitgc.model import Action, ClusterSnapshot, KitDecision, ObjectRef, Plan, State
from kitgc.plan.reasons import Reason, ReasonKind, Subject
from kitgc.present.explain import Chains, parse_target
from testbed import objects
from testbed import planfactory as f
from testbed.pushgateway import Pushgateway
from testbed.world import World

DIGEST = f.digest("x")


@pytest.mark.parametrize(("text", "repository", "tag", "digest", "prefix"), [
    (DIGEST, None, None, DIGEST, False),
    (DIGEST[7:19], None, None, DIGEST[:19], True),  # 12 hex digits, as the report's table shows them
    ("sha256:" + DIGEST[7:15], None, None, DIGEST[:15], True),
    ("reg:5000/camel-k/camel-k-kit-a:7", "camel-k/camel-k-kit-a", "7", None, False),
    (f"reg:5000/camel-k/camel-k-kit-a@{DIGEST}", "camel-k/camel-k-kit-a", None, DIGEST, False),
    ("camel-k/camel-k-kit-a", "camel-k/camel-k-kit-a", None, None, False),
])
def test_explain_accepts_references_digests_and_the_short_digests_of_the_report(
    text: str, repository: str | None, tag: str | None, digest: str | None, prefix: bool
) -> None:
    t = parse_target(text)
    assert (t.repository, t.tag, t.digest, t.prefix) == (repository, tag, digest, prefix)


def test_explain_refuses_what_is_not_an_image_reference() -> None:
    with pytest.raises(InvalidReference):
        parse_target("Camel-K/Kit A")


def _chain_scene():
    """kit-p is the base of kit-c, which Integration shop/orders uses and runs as a Deployment."""
    p1, c1 = f.manifest(f.repo("kit-p"), "p1", "1"), f.manifest(f.repo("kit-c"), "c1", "2")
    parent = f.kit("kit-p", image=f.image(p1.repository, "p1"))
    child = f.kit("kit-c", image=f.image(c1.repository, "c1"), base=f.image(p1.repository, "p1"))
    refs = [f.ref(f.image(c1.repository, "c1"), "Deployment", "orders", "shop"),
            f.ref(f.image(c1.repository, "c1"), "Integration", "orders", "shop")]
    owners = {ObjectRef("Deployment", "orders", "shop"): ObjectRef("Integration", "orders", "shop")}
    snap = f.cluster(refs, [parent, child], [f.use(child)], owners=owners)
    return f.run(f.inventory(p1, c1), snap), snap, p1, c1


def test_a_base_image_is_followed_to_the_integration_and_its_deployment() -> None:
    plan, snap, p1, _ = _chain_scene()

    chains = Chains(plan, snap).for_decision(f.decision(plan, p1))

    assert ("base image of IntegrationKit camel-k/kit-c, used by Integration shop/orders, "
            "running as Deployment shop/orders") in chains
    assert ("image of IntegrationKit camel-k/kit-p, kept as base image of IntegrationKit camel-k/kit-c, "
            "used by Integration shop/orders, running as Deployment shop/orders") in chains


def test_an_integration_reference_says_what_the_integration_runs_as_even_on_knative() -> None:
    m = f.manifest(f.repo("kit-k"), "k1", "1")
    refs = [f.ref(f.image(m.repository, "k1"), "Integration", "greeter", "web"),
            f.ref(f.image(m.repository, "k1"), "Service.serving.knative.dev", "greeter", "web")]
    owners = {ObjectRef("Service.serving.knative.dev", "greeter", "web"): ObjectRef("Integration", "greeter", "web")}
    snap = f.cluster(refs, owners=owners)
    plan = f.run(f.inventory(m), snap)

    chains = Chains(plan, snap).for_decision(f.decision(plan, m))

    assert "referenced by Integration web/greeter, running as Knative Service web/greeter" in chains


def test_explain_follows_owner_references_not_names() -> None:
    """A ReplicaSet need not be named after its Deployment, nor a Deployment after its Integration."""
    m = f.manifest(f.repo("kit-o"), "o1", "1")
    pod, rs = ObjectRef("Pod", "worker-x7k2p", "shop"), ObjectRef("ReplicaSet", "blue-5f9c", "shop")
    deploy, integration = ObjectRef("Deployment", "green", "shop"), ObjectRef("Integration", "orders", "shop")
    refs = [f.ref(f.image(m.repository, "o1"), "Pod", "worker-x7k2p", "shop"),
            f.ref(f.image(m.repository, "o1"), "Integration", "orders", "shop"),
            f.ref(f.image(m.repository, "o1"), "Deployment", "orders", "shop")]  # same name, not owned
    snap = f.cluster(refs, owners={pod: rs, rs: deploy, deploy: integration})
    plan = f.run(f.inventory(m), snap)

    chains = Chains(plan, snap).for_decision(f.decision(plan, m))

    assert ("referenced by Pod shop/worker-x7k2p, owned by ReplicaSet shop/blue-5f9c ← Deployment shop/green "
            "← Integration shop/orders") in chains
    assert "referenced by Integration shop/orders, running as Deployment shop/green" in chains
    assert "referenced by Deployment shop/orders" in chains  # named like the Integration, but not its own


def _kit_reason(kind: ReasonKind, kit: str) -> Reason:
    return Reason(kind, (Subject(ObjectRef("IntegrationKit", kit, "camel-k")),))


def test_chains_end_even_when_kit_reasons_point_at_each_other() -> None:
    a, b = f.kit("kit-a"), f.kit("kit-b")
    plan = Plan(manifests=(), state=State(), kits=(
        KitDecision(a, Action.KEEP, _kit_reason(ReasonKind.BASE_OF_KIT, "kit-b")),
        KitDecision(b, Action.KEEP, _kit_reason(ReasonKind.BASE_OF_KIT, "kit-a"))))

    chains = Chains(plan, ClusterSnapshot((), (), ())).expand(_kit_reason(ReasonKind.KIT_IMAGE, "kit-a"))

    assert chains == ["image of IntegrationKit camel-k/kit-a, kept as base image of IntegrationKit camel-k/kit-b, "
                      "kept as base image of IntegrationKit camel-k/kit-a"]


def test_an_image_of_a_kit_being_deleted_says_so() -> None:
    gone = f.kit("kit-g", age=9 * f.DAY)
    unused = Reason(ReasonKind.UNUSED, age=9 * f.DAY)
    plan = replace(f.run(f.inventory()), kits=(KitDecision(gone, Action.DELETE, unused),))

    assert Chains(plan, None).expand(_kit_reason(ReasonKind.KIT_IMAGE, "kit-g")) == [
        "image of IntegrationKit camel-k/kit-g (itself being deleted: unused for 9d: no Integration uses it, "
        "no kit builds on it)"]


# --- through the CLI, read-only ------------------------------------------------------------


@pytest.fixture
def world(registry, kube, org, tmp_path: Path, pushgateway: Pushgateway) -> World:
    w = World(registry, kube, org)
    w.anchor()
    # Every side effect a real run has is switched on: explain must still do none of them.
    w.env.update({"DRY_RUN": "false", "MIN_AGE": "0", "PUSHGATEWAY_URL": pushgateway.url,
                  "REPORT_FILE": str(tmp_path / "report.json"), "STATE_CONFIGMAP": "default/kitgc-state"})
    return w


def _explain(world: World, image: str, **env: str) -> tuple[int, str]:
    full = {"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
            "REGISTRY_INSECURE": "true", "KUBECONFIG": str(world.kube.kubeconfig), "LOG_FORMAT": "console",
            **world.env, **env}
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["explain", image], full)
    return code, out.getvalue()


def test_explain_writes_nothing_anywhere_even_with_every_side_effect_configured(
    world: World, pushgateway: Pushgateway, tmp_path: Path
) -> None:
    kit = objects.kit_name("explain")
    repo = world.repo(kit)
    used, unused = world.push(repo, "1"), world.push(repo, "2")
    world.add(objects.integration_kit(kit, "camel-k", image=world.image(repo, unused)))  # an old, unused kit
    world.add(objects.deployment("orders", "shop", images=[world.image(repo, used)]))

    code, text = _explain(world, world.image(repo, unused))

    assert code == 0, text
    assert "would be deleted: unreferenced for" in text
    assert world.kube.writes() == []
    assert world.exists(repo, used) and world.exists(repo, unused)
    assert world.kits() == [kit]
    assert not (tmp_path / "report.json").exists()
    assert not pushgateway.scrape().names(job="camel-k-kit-gc")


def test_explain_by_short_digest_in_json_mode_prints_one_json_answer(world: World) -> None:
    repo = world.repo(objects.kit_name("json"))
    digest = world.push(repo, "1")
    world.add(objects.pod("p", "shop", images=[world.image(repo, digest)]))

    code, text = _explain(world, digest[7:19], LOG_FORMAT="json", LOG_LEVEL="info")

    assert code == 0, text
    (line,) = text.splitlines()
    answer = json.loads(line)
    assert answer["event"] == "explain"
    (match,) = answer["matches"]
    assert (match["repository"], match["action"], match["reason"]) == (repo, "keep", "referenced by Pod shop/p")


def test_explain_says_a_repository_outside_scope_is_never_touched(world: World) -> None:
    code, text = _explain(world, f"{world.registry.address}/{world.org}/some-app:1")

    assert code == 0
    assert "never touched" in text


def test_explain_exits_2_for_an_unknown_image_or_a_bad_reference(world: World) -> None:
    assert _explain(world, f"{world.repo(objects.kit_name('nothing'))}:1")[0] == 2
    assert _explain(world, "Not An Image")[0] == 2
