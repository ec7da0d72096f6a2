"""The human report (LOG_FORMAT=console): the sentence, the tables, and JSON mode untouched.

The sentence is checked against plans the real planner makes, so a change in the planner's
wording that would silently move manifests into "kept for other reasons" fails here.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from dataclasses import replace
from datetime import timedelta

import pytest

from kitgc.cli import main
from kitgc.model import Action, Blob, DeletionFailure, ExecutionResult, ObjectRef, RepositoryProblem
from kitgc.outcome import RunSummary
from kitgc.plan.reasons import Reason, ReasonKind, Subject
from kitgc.present.console import cell_text, human_bytes, kept_breakdown, kept_category, manifest_table, print_report
from kitgc.present.console import summary_sentence as sentence
from kitgc.present.report import counts, reclaimable_bytes
from kitgc.run import PassResult
from testbed import objects
from testbed import planfactory as f
from testbed.world import World

MIB = 1024 * 1024


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (int(9.84 * MIB), "9.8 MiB"),
    (312 * MIB, "312 MiB"), (1024 * MIB, "1.0 GiB"), (5 * 1024**5, "5.0 PiB"),
])
def test_bytes_read_in_binary_units_like_du(n: int, text: str) -> None:
    assert human_bytes(n) == text


def _result(plan, *, dry_run: bool = True, result: ExecutionResult | None = None, **summary) -> PassResult:
    c = counts(plan)
    deleted = result.manifests_deleted if result else None
    s = RunSummary("success", 0, dry_run, 1_700_000_000.0, 1.25, repositories_scanned=len({
        d.manifest.repository for d in plan.manifests}), manifests_scanned=c["manifests_scanned"],
        manifests_eligible=c["manifests_eligible"], bytes_reclaimable=reclaimable_bytes(plan, deleted),
        kits_deleted=len(result.kits_deleted) if result else 0,
        delete_failures=len(result.failures) if result else 0)
    return PassResult(summary=replace(s, **summary), plan=plan, result=result, registry=f.HOST,
                      organizations=(f.ORG,))


def _big(m, size: int):
    return replace(m, blobs=(Blob(f.digest(("blob", m.digest)), size),))


@pytest.fixture
def scene():
    """A referenced image, a base image, a young orphan, an old image of a live kit, an unused kit."""
    parent, child, unused = f.kit("kit-p", age=9 * f.DAY), f.kit("kit-c", age=5 * f.DAY), f.kit("kit-u", age=4 * f.DAY)
    p1 = f.manifest(f.repo("kit-p"), "p1", "1")
    c1, c0 = f.manifest(f.repo("kit-c"), "c1", "2"), _big(f.manifest(f.repo("kit-c"), "c0", "1"), 3 * MIB)
    u1 = _big(f.manifest(f.repo("kit-u"), "u1", "7"), 2 * MIB)
    young = f.manifest(f.repo("kit-gone"), "y1", "4")
    parent = replace(parent, image=f.image(p1.repository, "p1"))
    child = replace(child, image=f.image(c1.repository, "c1"), base_image=f.image(p1.repository, "p1"))
    unused = replace(unused, image=f.image(u1.repository, "u1"))
    plan = f.run(f.inventory(p1, c1, c0, u1, young),
                 f.cluster([f.ref(f.image(c1.repository, "c1"))], [parent, child, unused], [f.use(child)]))
    return plan, {"p1": p1, "c1": c1, "c0": c0, "u1": u1, "young": young}


def test_dry_run_sentence_says_what_would_go_in_bytes_and_why_the_rest_stays(scene) -> None:
    plan, _ = scene

    text = sentence(_result(plan))

    assert text == ("Would delete 2 manifests (5.0 MiB) in 2 repositories and 1 unused IntegrationKit; "
                    "3 kept: 1 referenced, 1 base image, 1 younger than MIN_AGE.")


def test_real_run_sentence_counts_what_was_deleted_and_what_failed(scene) -> None:
    plan, m = scene
    result = ExecutionResult(manifests_deleted=(m["c0"].key,), kits_deleted=("camel-k/kit-u",),
                             failures=(DeletionFailure(m["u1"].key, "HTTP 500"),))

    text = sentence(_result(plan, dry_run=False, result=result))

    assert text.startswith("Deleted 1 manifest (3.0 MiB, freed by the registry's next garbage collection) in "
                           "1 repository and 1 unused IntegrationKit; 3 kept")
    assert text.endswith("1 deletion failed.")


def test_sentence_says_nothing_to_delete_and_mentions_deferred_work() -> None:
    m1, m2 = f.manifest(f.repo("kit-a"), "a1", "1"), f.manifest(f.repo("kit-a"), "a2", "2")
    plan = f.run(f.inventory(m1, m2), f.cluster([f.ref(f.image(m1.repository, "a1"))]),
                 f.policy(min_age=f.timedelta(0), max_deletions=0), f.seen((m2, 3 * f.DAY)))

    assert sentence(_result(plan)) == (
        "Nothing to delete; 1 kept: 1 referenced. 1 more manifest deferred to a later run.")


def test_aborted_run_says_nothing_was_deleted_and_why() -> None:
    s = RunSummary("aborted", 3, True, 0.0, 0.1, message="cannot list apps/v1 deployments: 403")

    assert sentence(PassResult(summary=s)) == "Aborted, nothing deleted: cannot list apps/v1 deployments: 403."


def test_every_kind_of_planner_reason_for_keeping_has_its_own_category() -> None:
    """Pinned against the planner's own words: none of these may fall into "other reasons"."""
    by_tag, by_digest = f.manifest(f.repo("kit-a"), "t", "1"), f.manifest(f.repo("kit-a"), "d", "2")
    young_kit_img = f.manifest(f.repo("kit-y"), "y", "1")
    base, root = f.manifest(f.repo("kit-b"), "b", "1"), f.manifest(f.repo("kit-r"), "r", "1")
    building = f.manifest(f.repo("kit-w"), "w", "1")
    child = f.manifest(f.repo("kit-i"), "child")
    index = f.manifest(f.repo("kit-i"), "idx", "1", children=(child.digest,))
    unread = f.manifest(f.repo("kit-x"), "x", "1")
    fresh = f.manifest(f.repo("kit-gone"), "g", "1")
    user = f.kit("kit-u", image=f.image(f.repo("kit-u"), "u"), base=f.image(base.repository, "b"),
                 root=f.image(root.repository, "r"))
    kits = [f.kit("kit-y", age=f.MINUTE, image=f.image(young_kit_img.repository, "y")), user,
            f.kit("kit-w", phase="Build Running")]
    inv = f.inventory(by_tag, by_digest, young_kit_img, base, root, building, child, index, unread, fresh,
                      problems=(RepositoryProblem(unread.repository, "HTTP 500", "1"),))
    refs = [f.ref(f.image(by_tag.repository, tag="1"), "Pod", "p"), f.ref(f.image(by_digest.repository, "d")),
            f.ref(f.image(index.repository, "idx"))]
    plan = f.run(inv, f.cluster(refs, kits, [f.use(user)]))

    categories = {d.manifest.key: kept_category(d.why[0]) for d in plan.manifests}

    assert all(d.action is Action.KEEP for d in plan.manifests), [d.reason for d in plan.manifests]
    assert categories[by_tag.key] == categories[by_digest.key] == ("referenced", "referenced")
    assert categories[young_kit_img.key][1] == "images of kits that stay"
    assert categories[base.key][1] == "base images"
    assert categories[root.key][1] == "root images"
    assert categories[building.key][1] == "of kits still building"
    assert categories[child.key][1] == "children of kept indexes"
    assert categories[fresh.key] == ("younger than MIN_AGE", "younger than MIN_AGE")
    assert categories[unread.key][1] == "in repositories not read completely"
    assert sum(n for _, n in kept_breakdown(plan.manifests)) == len(plan.manifests)


def test_table_reasons_name_the_kit_of_the_row_as_its_own_and_knative_kinds_plainly() -> None:
    repo = "camel-k/camel-k-kit-abc"
    own, longer = ObjectRef("IntegrationKit", "kit-abc", "camel-k"), ObjectRef("IntegrationKit", "kit-abcd", "camel-k")
    going = Reason(ReasonKind.UNREFERENCED, (Subject(own),), age=timedelta(days=3))
    assert cell_text(going, repo) == "unreferenced for 3d; its IntegrationKit is being deleted"
    assert cell_text(Reason(ReasonKind.BASE_IMAGE, (Subject(longer),)), repo) == (
        "base image of IntegrationKit camel-k/kit-abcd")
    revision = ObjectRef("Revision.serving.knative.dev", "greeter-00001", "web")
    assert cell_text(Reason(ReasonKind.REFERENCED, (Subject(revision),)), repo) == (
        "referenced by Knative Revision web/greeter-00001")


def test_a_kit_whose_name_extends_the_rows_kit_is_not_called_its_own() -> None:
    """The old text rewrite matched ``kit-a`` inside ``kit-a-b`` (a regex word boundary)."""
    other = ObjectRef("IntegrationKit", "kit-a-b", "ns")
    text = cell_text(Reason(ReasonKind.BASE_IMAGE, (Subject(other),)), "ns/camel-k-kit-a")
    assert text == "base image of IntegrationKit ns/kit-a-b"


def test_report_off_a_terminal_has_no_colour_codes_and_no_trailing_blanks(scene) -> None:
    plan, m = scene
    out = io.StringIO()

    print_report(_result(plan), out)

    text = out.getvalue()
    assert "\x1b[" not in text
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "DRY RUN" in text and m["c0"].repository in text and "would delete" in text
    assert "Would delete 2 manifests" in text
    assert "IntegrationKits" in text and "kit-u" in text


def test_long_tables_show_deletions_first_and_say_how_many_rows_are_hidden(scene) -> None:
    plan, _ = scene
    out = io.StringIO()
    table = manifest_table(_result(plan), limit=2)

    from rich.console import Console

    Console(file=out, width=200).print(table)
    text = out.getvalue()
    assert text.count("would delete") == 2
    assert "3 kept manifests not shown" in text


# --- through the CLI ----------------------------------------------------------------------


@pytest.fixture
def world(registry, kube, org) -> World:
    w = World(registry, kube, org)
    w.anchor()
    repo = w.repo(objects.kit_name("console"))
    kept = w.push(repo, "1")
    w.push(repo, "2")
    w.add(objects.deployment("orders", "shop", images=[w.image(repo, kept)]))
    return w


def _raw(world: World, **env: str) -> tuple[int, str]:
    full = {"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
            "REGISTRY_INSECURE": "true", "MIN_AGE": "0", "PRUNE_KITS": "false",
            "KUBECONFIG": str(world.kube.kubeconfig), **env}
    out = io.StringIO()
    with redirect_stdout(out):
        code = main([], full)
    return code, out.getvalue()


def test_console_mode_ends_with_the_table_and_the_sentence(world: World) -> None:
    code, text = _raw(world, LOG_FORMAT="console")

    assert code == 0
    assert re.search(r"^Would delete 1 manifest \(\d", text, re.M), text
    assert "referenced by Deployment shop/orders" in text
    assert text.rstrip().splitlines()[-1].startswith("Scanned 1 kit repository")


def test_json_mode_prints_no_table_only_json_objects(world: World) -> None:
    code, text = _raw(world, LOG_FORMAT="json")

    assert code == 0
    lines = text.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    assert "Would delete" not in text
