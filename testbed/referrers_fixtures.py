"""Pytest fixture for the registry personality with the OCI 1.1 referrers API
(:mod:`testbed.referrers_proxy`), in front of the session's real registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.referrers_proxy import ReferrersProxy
from testbed.registry_server import RegistryServer


@pytest.fixture
def referrers_proxy(registry: RegistryServer) -> Iterator[ReferrersProxy]:
    """A :class:`ReferrersProxy` (fresh: no subjects learnt yet) in front of ``registry``;
    push through ``.url`` so it learns the subjects, point kitgc at ``.address``."""
    with ReferrersProxy(registry.url) as proxy:
        yield proxy
