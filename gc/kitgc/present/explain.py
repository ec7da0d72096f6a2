"""``kitgc explain IMAGE_OR_DIGEST``: why one image would be kept or deleted, read-only.

It runs the very same pass as ``kitgc`` (same scan, same snapshot, same planner), so its
answer cannot drift from what a real run would do; but it forces a dry run and drops every
side effect: no DELETE, no state ConfigMap write, no metrics push, no report file.

The planner's reasons say what protects a manifest directly ("base image of IntegrationKit
camel-k/kit-b"). People then ask "and why does *that* stay?", so each reason is followed
through the kit decisions and the snapshot's ownerReferences to a root cause (an
Integration's Deployment, CronJob or Knative Service is owned by the Integration):

    base image of IntegrationKit camel-k/kit-b, used by Integration shop/orders,
    running as Deployment shop/orders
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from kitgc import logs
from kitgc.attachments import attached_to, attachment_of
from kitgc.config import Settings
from kitgc.errors import EXIT_ABORT, EXIT_CONFIG, EXIT_OK
from kitgc.identity import KitKey, ManifestKey, short_digest
from kitgc.imageref import InvalidReference, parse
from kitgc.model import Action, ClusterSnapshot, KitDecision, Manifest, ManifestDecision, ObjectRef, Plan
from kitgc.plan.reasons import Reason, ReasonKind
from kitgc.plan.text import View
from kitgc.scope import in_scope

if TYPE_CHECKING:
    from kitgc.run import PassResult

MAX_CHAINS = 12
MAX_DEPTH = 8
_HEX = re.compile(r"^(?:sha256:)?([0-9a-f]{8,64})$")
# What Camel K runs an Integration as (each owned by its Integration).
RUNNING_KINDS = frozenset({"Deployment", "CronJob", "Service.serving.knative.dev"})


@dataclass(frozen=True)
class Target:
    """What the user asked about: a repository (path, host ignored), a tag, a digest or its prefix."""

    text: str
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None  # full digest, or "sha256:<hex prefix>" when ``prefix``
    prefix: bool = False

    def matches(self, m: Manifest) -> bool:
        if self.repository is not None and m.repository != self.repository:
            return False
        if self.digest is not None:
            return m.digest.startswith(self.digest) if self.prefix else m.digest == self.digest
        if self.tag is not None:
            return self.tag in m.tags
        return True  # a bare repository: every manifest in it


def parse_target(text: str) -> Target:
    """``sha256:…`` (or 8+ hex digits, as the report shows them), ``repo:tag``, ``repo@digest``, ``repo``."""
    text = text.strip()
    hexmatch = _HEX.match(text)
    if hexmatch:
        hexpart = hexmatch.group(1)
        return Target(text, digest=f"sha256:{hexpart}", prefix=len(hexpart) < 64)
    ref = parse(text)  # InvalidReference names the problem
    repository = ref.repository
    return Target(text, repository=repository, tag=ref.tag if not ref.digest else None, digest=ref.digest)


_RUNNING_VIEW = View(friendly_kinds=True)


class Chains:
    """Follows a reason to its root cause through kit decisions and ownerReferences.

    Upwards, a subject's owner chain (Pod, ReplicaSet, Deployment, Integration) is what the
    planner recorded from ``metadata.ownerReferences``; downwards, what an Integration runs
    as is every Deployment, CronJob or Knative Service whose owner it is. Names are never
    matched: a ReplicaSet need not be named after its Deployment.
    """

    def __init__(self, plan: Plan, cluster: ClusterSnapshot | None) -> None:
        self.kits: dict[KitKey, KitDecision] = {d.kit.key: d for d in plan.kits}
        self.images: dict[ManifestKey, ManifestDecision] = {d.manifest.key: d for d in plan.manifests}
        self.running_as: dict[ObjectRef, set[ObjectRef]] = defaultdict(set)
        if cluster is not None:
            for child, owner in cluster.owners.items():
                if child.kind in RUNNING_KINDS:
                    self.running_as[owner].add(child)

    def running(self, ref: ObjectRef) -> str:
        found = sorted(self.running_as.get(ref, ()), key=str)
        return f", running as {' and '.join(_RUNNING_VIEW.object(w) for w in found)}" if found else ""

    def expand(self, reason: Reason, seen: frozenset[KitKey] = frozenset(), depth: int = 0) -> list[str]:
        """``reason`` followed by why the object it names is there, one string per chain."""
        text = str(reason)
        if reason.kind is ReasonKind.KEPT_WITH_IMAGE and reason.index is not None and depth <= MAX_DEPTH:
            image = self.images.get(reason.index)  # an attachment stays because its image does: why?
            if image is not None and image.why:
                return [f"{text}, kept: {chain}" for chain in self.expand(image.why[0], seen, depth + 1)]
        if not reason.subjects or depth > MAX_DEPTH:
            return [text]
        subject = reason.subjects[0]
        kit = reason.kit
        if kit is not None:
            return [text + tail for tail in self._kit_tails(kit, seen, depth)]
        if subject.ref.kind == "Integration":
            return [text + self.running(subject.ref)]
        if subject.chain:
            owners = " ← ".join(_RUNNING_VIEW.object(o) for o in subject.chain)
            return [f"{text}, owned by {owners}"]
        return [text]

    def _kit_tails(self, key: KitKey, seen: frozenset[KitKey], depth: int) -> list[str]:
        decision = self.kits.get(key)
        if decision is None or key in seen:
            return [""]
        if decision.action is Action.DELETE:
            return [f" (itself being deleted: {decision.reason})"]
        why = decision.why
        if why.kind is ReasonKind.USED and why.subjects:
            return [f", used by {_RUNNING_VIEW.object(u.ref)}{self.running(u.ref)}" for u in why.subjects]
        joiner = ", kept as " if why.kind in (ReasonKind.BASE_OF_KIT, ReasonKind.ROOT_OF_KIT) else ", kept: "
        return [joiner + chain for chain in self.expand(why, seen | {key}, depth + 1)]

    def for_decision(self, d: ManifestDecision) -> list[str]:
        chains: list[str] = []
        for reason in d.why:
            for chain in self.expand(reason):
                if chain not in chains:
                    chains.append(chain)
        return chains[:MAX_CHAINS]


def _kind_of(m: Manifest) -> str:
    found = attachment_of(m)
    return found.kind.value if found else "attachment"


def _verb(d: ManifestDecision) -> str:
    return {Action.KEEP: "kept", Action.DELETE: "would be deleted", Action.DEFER: "deferred"}[d.action]


def explanation(out: PassResult, target: Target) -> dict[str, Any]:
    """The answer as data: matches with their decision and chains, or why there is none."""
    plan = out.plan
    assert plan is not None
    chains = Chains(plan, out.cluster)
    found = [d for d in plan.manifests if target.matches(d.manifest)]
    attachments = attached_to([d.manifest for d in plan.manifests])
    decided = {d.manifest.key: d for d in plan.manifests}
    answer: dict[str, Any] = {"image": target.text, "registry": out.registry,
                              "organizations": list(out.organizations), "matches": []}
    for d in found:
        m = d.manifest
        answer["matches"].append({
            "repository": m.repository, "digest": m.digest, "tags": list(m.tags), "action": d.action.value,
            "decision": _verb(d), "reason": d.reason, "chains": chains.for_decision(d),
            "why": [r.as_dict() for r in d.why],
            "attachments": [{"digest": a.digest, "kind": _kind_of(a), "decision": _verb(decided[a.key])}
                            for a in sorted(attachments.get(m.key, ()), key=lambda a: a.digest)],
        })
    if not found:
        if target.repository and not in_scope(target.repository, out.organizations):
            orgs = ", ".join(out.organizations) or "any organization"
            why = Reason(ReasonKind.OUT_OF_SCOPE, message=f"{target.repository} is not a kit repository "
                         f"(<organization>/camel-k-kit-*) of {orgs}")
            answer["out_of_scope"] = True
            answer["note"] = str(why)
            answer["why"] = [why.as_dict()]
        else:
            answer["note"] = "not found among the in-scope manifests of the registry"
    if out.summary.exit_code == EXIT_ABORT:
        answer["run_would_abort"] = out.summary.message
    return answer


def render_text(answer: dict[str, Any], stream: TextIO) -> None:
    from rich.console import Console
    from rich.text import Text

    tty = stream.isatty()
    # Off a terminal a chain stays on one line, so it can be grepped.
    console = Console(file=stream, no_color=not tty, highlight=False, soft_wrap=not tty)
    if not answer["matches"]:
        console.print(Text(f"{answer['image']}: {answer['note']}", style="bold"))
    styles = {"keep": "bold green", "delete": "bold red", "defer": "bold yellow"}
    for match in answer["matches"]:
        tags = f" (tags {', '.join(match['tags'])})" if match["tags"] else " (untagged)"
        key = ManifestKey(match["repository"], match["digest"])
        console.print(Text(f"{key.short()}{tags}", style="bold"))
        line = Text("  ")
        line.append(f"{match['decision']}: ", style=styles[match["action"]])
        line.append(match["reason"])
        console.print(line)
        for chain in match["chains"]:
            console.print(Text(f"    · {chain}"))
        for attachment in match.get("attachments", ()):
            console.print(Text(f"    ↳ {attachment['kind']} {short_digest(attachment['digest'])}: "
                               f"{attachment['decision']} with it"))
    if answer.get("run_would_abort"):
        console.print(Text(f"note: a real run would stop here and delete nothing: {answer['run_would_abort']}",
                           style="yellow"))


def explain(settings: Settings, image: str, stream: TextIO | None = None) -> int:
    """Run a read-only pass and say why ``image`` would be kept or deleted; the exit code.

    0 when the image was found (or is out of scope, so never touched), 2 when the argument
    is not an image reference or names no manifest in scope, 3 when the pass could not
    plan at all (a reference source unreadable: the same abort a real run would make).
    """
    from kitgc.run import run_pass

    stream = stream or sys.stdout
    log = logs.get_logger()
    try:
        target = parse_target(image)
    except InvalidReference as exc:
        log.error("explain_input_error", error=str(exc), exit_code=EXIT_CONFIG)
        return EXIT_CONFIG
    safe = replace(settings, dry_run=True, report_file=None, pushgateway_url=None,
                   pushgateway_username=None, pushgateway_password=None)
    # The pass's own info events would bury the answer; warnings and errors still show.
    logs.configure(settings.log_format, "debug" if settings.log_level == "debug" else "warning")
    try:
        out = run_pass(safe)
    finally:
        logs.configure(settings.log_format, settings.log_level)
    if out.plan is None:
        log.error("explain_failed", error=out.summary.message or out.summary.outcome,
                  exit_code=out.summary.exit_code)
        return out.summary.exit_code or EXIT_ABORT
    answer = explanation(out, target)
    if settings.log_format == "json":
        # Written directly, not through the logger: the answer must show at any LOG_LEVEL.
        line = {"event": "explain", "level": "info", "timestamp": datetime.now(UTC).isoformat(), **answer}
        stream.write(json.dumps(line, default=str) + "\n")
        stream.flush()
    else:
        render_text(answer, stream)
    if answer["matches"] or answer.get("out_of_scope"):
        return EXIT_OK
    return EXIT_CONFIG


__all__ = ["Chains", "Target", "explain", "explanation", "parse_target"]
