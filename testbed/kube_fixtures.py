"""Fixture ``kube``: a running Kubernetes API emulator and a kubeconfig pointing at it.

``KUBECONFIG`` is set for the test (and ``KUBERNETES_SERVICE_HOST`` unset), so code that
connects on its own (the CLI, ``make_api_client()``) reaches the emulator too.

    def test_x(kube):
        kube.add(objects.pod("p", images=["nginx"]))
        reader = ClusterReader(kube.client())
        ...
        assert kube.api.writes() == []
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from kitgc.kube.connect import make_api_client
from testbed.kubeapi import Fault, KubeAPI, Request


@dataclass
class KubeHandle:
    api: KubeAPI
    kubeconfig: Path
    _clients: list[kubernetes.client.ApiClient] = field(default_factory=list)

    def client(self) -> kubernetes.client.ApiClient:
        """A client built the way the collector builds its own (closed at teardown)."""
        client = make_api_client({"KUBECONFIG": str(self.kubeconfig)})
        self._clients.append(client)
        return client

    def add(self, *objs: dict[str, Any]) -> None:
        self.api.add(*objs)

    def inject(self, method: str, path: str, **kw: Any) -> Fault:
        return self.api.inject(method, path, **kw)

    def serve(self, group: str, plural: str | None = None, *, on: bool = True) -> None:
        self.api.serve(group, plural, on=on)

    @property
    def requests(self) -> list[Request]:
        return self.api.requests

    def writes(self) -> list[Request]:
        return self.api.writes()

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeHandle]:
    api = KubeAPI().start()
    path = api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    handle = KubeHandle(api, path)
    try:
        yield handle
    finally:
        handle.close()
        api.stop()
