"""Shared fixtures live in tests/support/*_fixtures.py and are registered here."""

pytest_plugins = [
    "tests.support.registry_fixtures",
    "tests.support.kube_fixtures",
    "tests.support.pushgateway",
]
