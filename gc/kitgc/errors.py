"""Errors that decide the exit code, so the shell can map them without guessing.

Exit codes are the contract's: 2 for configuration or input errors (nothing touched),
3 for a safety abort (nothing deleted). Partial failures (exit 1) are not exceptions:
they are counted in the execution result.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_CONFIG = 2
EXIT_ABORT = 3


class KitGCError(Exception):
    """Base class; ``exit_code`` says how the run ends."""

    exit_code = EXIT_PARTIAL


class ConfigError(KitGCError):
    """Bad configuration or input: one line naming the variable or file at fault."""

    exit_code = EXIT_CONFIG


class SafetyAbort(KitGCError):
    """The reference picture is incomplete or a guard tripped: delete nothing."""

    exit_code = EXIT_ABORT


class SourceUnavailable(SafetyAbort):
    """A reference source could not be read completely (names the source)."""


class RegistryError(KitGCError):
    """The registry answered with an error, or with something that is not what the API says.

    ``code`` is the registry's error code (``UNSUPPORTED``, ``DENIED``…) when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DeletionDisabled(RegistryError):
    """The registry refuses every DELETE (Distribution without storage.delete.enabled)."""


class ManifestImmutable(RegistryError):
    """The registry refuses to delete this manifest for good: an immutable tag holds it
    (Quay ``409 TAG_IMMUTABLE``, Harbor ``412 PRECONDITION``). Kept with a reason of its
    own, counted apart, and not retried on every run (the state remembers it)."""


class HeldByAnother(RegistryError):
    """The registry refuses the manifest only while another one still exists (an index's
    child while its parent exists: Zot ``405 DENIED``, Harbor ``412``, GCR
    ``GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE``). The executor retries it once the rest of
    the plan has been carried out."""


class KubernetesError(KitGCError):
    """A Kubernetes write failed (kit deletion, state ConfigMap): the pass is partial (exit 1).

    Reads that fail raise :class:`SourceUnavailable` instead, which aborts the pass.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
