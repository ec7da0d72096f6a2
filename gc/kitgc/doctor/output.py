"""How the doctor's findings are shown: JSON lines for machines, a checklist for people.

JSON: exactly one object per check on stdout (``check``, ``ok``, ``detail``) and nothing else
there, so ``kitgc doctor | jq`` works; log lines go to stderr meanwhile. Console: one line
per check (✓ true, ✗ false, ? unknown), then one sentence saying whether a deleting run would
have what it needs.
"""

from __future__ import annotations

import json
from typing import TextIO

from kitgc.doctor.checks import Check, Findings

MARKS = {True: "✓", False: "✗", None: "?"}


def render(findings: Findings, fmt: str, stream: TextIO) -> None:
    if fmt == "json":
        for check in findings.checks:
            stream.write(json.dumps(check.as_dict(), ensure_ascii=False) + "\n")
    else:
        stream.write(checklist(findings))
    stream.flush()


def checklist(findings: Findings) -> str:
    width = max((len(c.check) for c in findings.checks), default=0)
    lines = [f"{MARKS[c.ok]} {c.check:<{width}}  {c.detail}" for c in findings.checks]
    lines += ["", verdict(findings)]
    return "\n".join(lines) + "\n"


def verdict(findings: Findings) -> str:
    """The last line: would a deleting run have what it needs?"""
    unknown = [c for c in findings.checks if c.ok is None]
    tail = (f" ({len(unknown)} cannot be known without deleting, or are optional and not set)"
            if unknown else "")
    if findings.config_error:
        return "A deleting run would not start: the configuration is wrong (exit 2); see the ✗ lines."
    failed: list[Check] = findings.failed
    if failed:
        names = ", ".join(c.check for c in failed)
        return f"A deleting run would NOT have what it needs: {len(failed)} failed ({names}).{tail}"
    return f"A deleting run would have what it needs.{tail}"


__all__ = ["checklist", "render", "verdict"]
