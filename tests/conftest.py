"""Shared fixtures live in testbed/*_fixtures.py and are registered here."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

pytest_plugins = [
    "testbed.registry_fixtures",
    "testbed.kube_fixtures",
    "testbed.pushgateway",
    "testbed.figures",
    "testbed.faultproxy",
    "testbed.referrers_fixtures",
    "testbed.clusters",
]


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Runs of ``kitgc.cli.main`` in-process configure logging globally; undo it after each test."""
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook = hook
    logging.captureWarnings(False)


@pytest.fixture(autouse=True)
def _worlds_closed() -> Iterator[None]:
    """A test's Worlds close their registry clients when it ends."""
    yield
    from testbed.world import close_worlds  # here: imported at the top, it would import the
    # fixture plugins it uses before pytest can rewrite their assertions
    close_worlds()
