"""What ``kitgc doctor`` reports: one :class:`Check` per thing a deleting run needs.

``ok`` is three-valued on purpose. ``True``/``False`` are facts the doctor saw; ``None`` is
what it cannot know without doing the very thing it promises not to do (delete), or an
optional part that is not configured. Only ``False`` fails the doctor (exit 1): a preflight
that failed on every unknowable would be switched off by the first person it annoyed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kitgc.errors import EXIT_CONFIG, EXIT_OK, EXIT_PARTIAL

UNKNOWN_UNTIL_DELETING = "unknown until the first deleting run"


@dataclass(frozen=True)
class Check:
    """One line of the checklist: a stable lower_snake name, the verdict, and why, on one line."""

    check: str
    ok: bool | None
    detail: str

    def __post_init__(self) -> None:
        # One line, always: details quote API servers and registries, which may say anything.
        object.__setattr__(self, "detail", " ".join(self.detail.split()))

    def as_dict(self) -> dict[str, object]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


@dataclass
class Findings:
    """The checks in the order they were made, and whether the configuration itself is wrong.

    ``config_error`` is set by a check that met a :class:`~kitgc.errors.ConfigError` (no
    registry address anywhere, an unreadable REGISTRY_AUTH_FILE): exit 2, as for a run.
    """

    checks: list[Check] = field(default_factory=list)
    config_error: bool = False

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def extend(self, checks: list[Check]) -> None:
        self.checks.extend(checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def exit_code(self) -> int:
        """2 for a configuration error, 1 when any check is false, else 0 (unknowns do not fail)."""
        if self.config_error:
            return EXIT_CONFIG
        return EXIT_PARTIAL if self.failed else EXIT_OK


__all__ = ["UNKNOWN_UNTIL_DELETING", "Check", "Findings"]
