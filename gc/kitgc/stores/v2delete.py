"""Deleting manifests through the registry API v2, adapting to the refusals it answers with.

``DELETE /v2/<name>/manifests/<digest>`` removes the manifest and every tag on it; what a
refusal means is read from the error ``code`` as well as the status, so a registry behind
a proxy or on a custom domain is handled by what it says, not by its name.
"""

from __future__ import annotations

import structlog

from kitgc.errors import DeletionDisabled, RegistryError
from kitgc.model import Manifest
from kitgc.registry.client import RegistryClient
from kitgc.stores.base import DeleteOutcome

log = structlog.get_logger("kitgc.store")

DISABLED_HINT = "deletion is disabled on the registry (Distribution: storage.delete.enabled)"


class V2Deleter:
    """Deletes one manifest at a time for a v2 store of kind ``kind``."""

    def __init__(self, client: RegistryClient, kind: str = "distribution") -> None:
        self.client = client
        self.kind = kind

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        try:
            gone = await self.client.delete_manifest(manifest.repository, manifest.digest)
        except RegistryError as exc:
            hint = self.explain_refusal(exc)
            if hint is not None:
                raise DeletionDisabled(f"DELETE {manifest.key}: {hint}", status=exc.status, code=exc.code) from None
            raise
        return DeleteOutcome.DELETED if gone else DeleteOutcome.ALREADY_GONE

    def explain_refusal(self, error: RegistryError) -> str | None:
        """``405 UNSUPPORTED`` (or a bare 405) on DELETE: the registry refuses every deletion."""
        if error.status == 405 and error.code in (None, "UNSUPPORTED"):
            return DISABLED_HINT
        return None
