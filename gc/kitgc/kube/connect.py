"""Building the Kubernetes ``ApiClient``: in-cluster configuration or a kubeconfig."""

from __future__ import annotations

import os
from collections.abc import Mapping

import kubernetes
import structlog

from kitgc.errors import ConfigError
from kitgc.kube.http import one_line


def make_api_client(env: Mapping[str, str] | None = None) -> kubernetes.client.ApiClient:
    """An ApiClient: in-cluster when ``KUBERNETES_SERVICE_HOST`` is set, else kubeconfig.

    urllib3's own retries are switched off: :class:`~kitgc.kube.http.KubeHttp` retries with
    backoff and counts what it does, and hidden retries would multiply timeouts.
    """
    env = os.environ if env is None else env
    cfg = kubernetes.client.Configuration()
    if env.get("KUBERNETES_SERVICE_HOST"):
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        except Exception as exc:
            raise ConfigError(f"cannot load the in-cluster Kubernetes configuration: {one_line(exc)}") from None
    else:
        path = env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            kubernetes.config.load_kube_config(config_file=path, client_configuration=cfg)
        except Exception as exc:
            raise ConfigError(
                f"cannot load Kubernetes configuration from KUBECONFIG={path}: {one_line(exc)}"
            ) from None
    cfg.retries = False
    if cfg.host.startswith("https") and not cfg.verify_ssl:
        # The kubeconfig asked for it (insecure-skip-tls-verify); never silently.
        structlog.get_logger("kitgc.cluster").warning(
            "kubernetes_tls_verification_off", server=cfg.host,
            note="the kubeconfig sets insecure-skip-tls-verify: the API server's identity is not checked")
    return kubernetes.client.ApiClient(cfg)
