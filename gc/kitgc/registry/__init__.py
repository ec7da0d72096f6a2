"""Talking to the image registry: credentials and tokens, the HTTP client, media types.

``RegistryClient`` is the only entry point the rest of the program needs.
"""

from kitgc.registry.auth import Credentials, load_docker_config
from kitgc.registry.client import MANIFEST_ACCEPT, FetchedManifest, RegistryClient

__all__ = ["MANIFEST_ACCEPT", "Credentials", "FetchedManifest", "RegistryClient", "load_docker_config"]
