"""The report people read (``LOG_FORMAT=console``): a table of decisions and one sentence.

JSON mode never prints any of this: there every line must stay one JSON object, and the
``summary`` event plus ``REPORT_FILE`` carry the same numbers for machines. The numbers here
come from the same plan, execution result and :class:`~kitgc.model.RunSummary` as the
metrics, so the sentence a person trusts and the gauge an alert watches cannot disagree.

The sentence is written for the question a user asks before switching ``DRY_RUN`` off:
"what exactly would it delete, and why is the rest kept?" — so kept manifests are counted
by the headline reason the planner gave them.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kitgc.attachments import under_their_images
from kitgc.identity import KitKey, ManifestKey, kit_name_of_repository
from kitgc.model import Action, KitDecision, ManifestDecision, Plan
from kitgc.plan.reasons import Reason, ReasonKind
from kitgc.plan.text import View, age_text
from kitgc.plan.text import render as render_reason

if TYPE_CHECKING:
    from kitgc.run import PassResult

MAX_MANIFEST_ROWS = 120
MAX_KIT_ROWS = 80
WIDTH = 160  # off a terminal (CI logs, files): wide enough for a kit repository and a reason
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")

# Kept manifests by the kind of their headline reason (the planner puts the strongest
# first), in the order the sentence lists them: (singular, plural).
_CATEGORIES: dict[ReasonKind, tuple[str, str]] = {
    ReasonKind.REFERENCED: ("referenced", "referenced"),
    ReasonKind.KEPT_BY_USER: ("kept by KEEP_IMAGES", "kept by KEEP_IMAGES"),
    ReasonKind.KIT_IMAGE: ("image of a kit that stays", "images of kits that stay"),
    ReasonKind.BASE_IMAGE: ("base image", "base images"),
    ReasonKind.ROOT_IMAGE: ("root image", "root images"),
    ReasonKind.KIT_BUILDING: ("of a kit still building", "of kits still building"),
    ReasonKind.INDEX_CHILD: ("child of a kept index", "children of kept indexes"),
    ReasonKind.TOO_YOUNG: ("younger than MIN_AGE", "younger than MIN_AGE"),
    ReasonKind.READ_PROBLEM: ("in a repository not read completely", "in repositories not read completely"),
}
_OTHER = ("kept for another reason", "kept for other reasons")


def human_bytes(n: int) -> str:
    """Binary units the way registries and ``du -h`` print them: ``512 B``, ``1.5 KiB``, ``312 MiB``."""
    if n < 1024:
        return f"{max(0, n)} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def kept_category(reason: Reason) -> tuple[str, str]:
    """The (singular, plural) label a kept manifest is counted under in the summary sentence."""
    return _CATEGORIES.get(reason.kind, _OTHER)


def kept_breakdown(decisions: Iterable[ManifestDecision]) -> list[tuple[str, int]]:
    """``[("referenced", 12), ("base images", 4), …]`` in a fixed, readable order."""
    counts = Counter(kept_category(d.why[0]) for d in decisions if d.action is Action.KEEP)
    order = [*_CATEGORIES.values(), _OTHER]
    return [(one if counts[(one, many)] == 1 else many, counts[(one, many)]) for one, many in order
            if counts[(one, many)]]


def summary_sentence(out: PassResult) -> str:
    """What the run did (or would do), in one sentence a user can check against the table."""
    s = out.summary
    if out.plan is None:
        return f"Aborted, nothing deleted: {s.message or s.outcome}."
    plan = out.plan
    kept = [d for d in plan.manifests if d.action is Action.KEEP]
    breakdown = ", ".join(f"{n} {label}" for label, n in kept_breakdown(plan.manifests))
    kept_text = f"{len(kept)} kept" + (f": {breakdown}" if breakdown else "")
    deferred = [d for d in plan.manifests if d.action is Action.DEFER]
    if s.dry_run:
        going = list(plan.manifest_deletions)
        kits = len(plan.kit_deletions)
        verb = "Would delete"
    else:
        done = set(out.result.manifests_deleted) if out.result else set()
        going = [d for d in plan.manifests if d.manifest.key in done]
        kits = s.kits_deleted
        verb = "Deleted"
    if not going and not kits:
        head = "Nothing to delete" if s.dry_run else "Deleted nothing"
        text = f"{head}; {kept_text}."
    else:
        repos = len({d.manifest.repository for d in going})
        kit_text = f" and {_plural(kits, 'unused IntegrationKit')}" if kits else ""
        size = human_bytes(s.bytes_reclaimable)
        if not s.dry_run:
            size += ", freed by the registry's next garbage collection"
        text = (f"{verb} {_plural(len(going), 'manifest')} ({size}) in "
                f"{_plural(repos, 'repository', 'repositories')}{kit_text}; {kept_text}.")
    if deferred:
        text += f" {_plural(len(deferred), 'more manifest')} deferred to a later run."
    if s.delete_failures:
        text += f" {_plural(s.delete_failures, 'deletion')} failed."
    if s.registry_errors:
        text += f" {_plural(s.registry_errors, 'repository or tag', 'repositories or tags')} could not be read."
    if out.shared_warning:
        text += f" {out.shared_warning}"
    if s.message:
        text += f" Stopped: {s.message}." if s.exit_code == 3 else f" {s.message}."
    return text


def cell_text(reason: Reason, repository: str) -> str:
    """The planner's reason worded for a table cell of ``repository``'s row.

    The row's own kit (exactly that kit, by name) is "its IntegrationKit": the repository
    already says which kit it is. Knative kinds read the way people say them.
    """
    return render_reason(reason, View(own_kit=kit_name_of_repository(repository), friendly_kinds=True))


def _decision_text(d: ManifestDecision, dry_run: bool, deleted: set[ManifestKey], failed: set[str]) -> Text:
    if d.action is Action.KEEP:
        return Text("keep", style="green")
    if d.action is Action.DEFER:
        return Text("deferred", style="yellow")
    if dry_run:
        return Text("would delete", style="bold red")
    if d.manifest.key in deleted:
        return Text("deleted", style="bold red")
    if str(d.manifest.key) in failed:
        return Text("failed", style="bold magenta")
    return Text("not deleted", style="yellow")


def _shown(items: Sequence[ManifestDecision], limit: int) -> list[ManifestDecision]:
    """All rows, or when too many, deletions first: those are what a user must check."""
    if len(items) <= limit:
        return list(items)
    chosen = sorted(items, key=lambda d: (d.action is Action.KEEP, d.manifest.repository, d.manifest.digest))[:limit]
    return sorted(chosen, key=lambda d: (d.manifest.repository, d.manifest.digest))


def manifest_table(out: PassResult, limit: int = MAX_MANIFEST_ROWS) -> Table:
    plan = out.plan
    assert plan is not None
    deleted = set(out.result.manifests_deleted) if out.result else set()
    failed = {f.target for f in out.result.failures} if out.result else set()
    table = Table(title="Manifests", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    for name, kw in (("Repository", {"overflow": "fold"}), ("Digest", {"no_wrap": True}), ("Tags", {}),
                     ("Size", {"justify": "right", "no_wrap": True}), ("Decision", {"no_wrap": True}),
                     ("Reason", {"ratio": 1})):
        table.add_column(name, **kw)
    rows = _shown(plan.manifests, limit)
    previous = None
    for d, depth in under_their_images(rows, lambda d: d.manifest):  # attachments under their image
        m = d.manifest
        table.add_row(
            m.repository if m.repository != previous else "",
            ("  " * (depth - 1) + "└ " if depth else "") + (m.digest.partition(":")[2][:12] or m.digest),
            ", ".join(m.tags) or "-",
            human_bytes(m.size + sum(b.size for b in m.blobs)),
            _decision_text(d, out.summary.dry_run, deleted, failed),
            cell_text(d.why[0], m.repository),
        )
        previous = m.repository
    if len(plan.manifests) > len(rows):
        table.caption = (f"{len(plan.manifests) - len(rows)} kept manifests not shown; "
                         "REPORT_FILE writes every decision")
    return table


def _kit_decision(k: KitDecision, dry_run: bool, deleted: set[KitKey]) -> Text:
    if k.action is not Action.DELETE:
        return Text("keep", style="green")
    if dry_run:
        return Text("would delete", style="bold red")
    gone = k.kit.key in deleted
    return Text("deleted", style="bold red") if gone else Text("not deleted", style="yellow")


def kit_table(out: PassResult, now: datetime, limit: int = MAX_KIT_ROWS) -> Table:
    plan = out.plan
    assert plan is not None
    deleted = set(out.result.kits_deleted) if out.result else set()
    table = Table(title="IntegrationKits", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    for name in ("Kit", "Type", "Phase", "Age", "Decision", "Reason"):
        table.add_column(name, ratio=1 if name == "Reason" else None, no_wrap=name in ("Kit", "Age", "Decision"))
    kits = sorted(plan.kits, key=lambda k: (k.action is not Action.DELETE, k.kit.namespace, k.kit.name))[:limit]
    for k in sorted(kits, key=lambda k: (k.kit.namespace, k.kit.name)):
        table.add_row(str(k.kit.key), k.kit.kit_type or "?", k.kit.phase or "-",
                      age_text(now - k.kit.created), _kit_decision(k, out.summary.dry_run, deleted),
                      render_reason(k.why, View(own_kit=k.kit.name, friendly_kinds=True)))
    if len(plan.kits) > len(kits):
        table.caption = f"{len(plan.kits) - len(kits)} kept kits not shown"
    return table


def _header(out: PassResult) -> Text:
    s = out.summary
    if s.dry_run:
        mode = Text(" DRY RUN ", style="bold black on yellow")
    else:
        mode = Text(" DELETING ", style="bold white on red")
    head = Text("kitgc ", style="bold")
    head.append_text(mode)
    where = f"  registry {out.registry or '?'}"
    if out.organizations:
        where += f", organizations {', '.join(out.organizations)}"
    head.append(where)
    return head


def _footer(out: PassResult) -> str:
    s = out.summary
    inv = out.inventory
    parts = [f"Scanned {_plural(s.repositories_scanned, 'kit repository', 'kit repositories')}, "
             f"{_plural(s.manifests_scanned, 'manifest')}"]
    if out.cluster is not None:
        parts.append(f"{_plural(out.cluster.objects_read, 'cluster object')}")
    text = ", ".join(parts) + f" in {s.duration_seconds:.1f} s"
    if inv is not None and inv.out_of_scope:
        text += (f"; {_plural(inv.out_of_scope, 'other repository', 'other repositories')} in the registry "
                 "left alone (not kit repositories of these organizations)")
    return text + "."


def render(out: PassResult, console: Console, *, now: datetime | None = None) -> None:
    """Print the whole report to ``console``: header, tables, the sentence, the footer."""
    console.print(_header(out))
    plan: Plan | None = out.plan
    if plan is not None:
        if plan.manifests:
            console.print(manifest_table(out))
            console.print()
        if plan.kits:
            console.print(kit_table(out, now or datetime.fromtimestamp(out.summary.started_at, UTC)))
            console.print()
    style = "bold red" if out.summary.exit_code == 3 or out.plan is None else "bold"
    console.print(Text(summary_sentence(out), style=style), soft_wrap=not console.is_terminal)  # one greppable line
    console.print(Text(_footer(out), style="dim"), soft_wrap=not console.is_terminal)


def print_report(out: PassResult, stream: TextIO | None = None, width: int | None = None) -> None:
    """Print the report to ``stream`` (stdout). Off a terminal: no colour, a fixed width."""
    stream = stream or sys.stdout
    if stream.isatty():
        render(out, Console(file=stream, width=width, highlight=False))
        return
    buffer = io.StringIO()  # rich pads every line to the width; a log file is better without
    render(out, Console(file=buffer, width=width or WIDTH, no_color=True, highlight=False))
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
    stream.flush()
