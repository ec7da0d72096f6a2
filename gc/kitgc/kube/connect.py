"""Building the Kubernetes ``ApiClient``: in-cluster configuration or a kubeconfig."""

from __future__ import annotations

import os
from collections.abc import Mapping

import kubernetes
import structlog
import yaml

from kitgc.errors import ConfigError, SourceUnavailable
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
    return _client(cfg)


def _client(cfg: kubernetes.client.Configuration, context: str = "") -> kubernetes.client.ApiClient:
    cfg.retries = False
    if cfg.host.startswith("https") and not cfg.verify_ssl:
        # The kubeconfig asked for it (insecure-skip-tls-verify); never silently.
        structlog.get_logger("kitgc.cluster").warning(
            "kubernetes_tls_verification_off", server=cfg.host, **({"context": context} if context else {}),
            note="the kubeconfig sets insecure-skip-tls-verify: the API server's identity is not checked")
    return kubernetes.client.ApiClient(cfg)


def reference_contexts(path: str) -> list[str]:
    """The context names of ``REFERENCE_KUBECONFIG``; a ConfigError when there are none.

    A file that names no cluster would make a run look protected while it is not.
    """
    try:  # read directly: kubectl leaves current-context empty, which the client's lister refuses
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"invalid REFERENCE_KUBECONFIG {path!r}: {one_line(exc)}") from None
    contexts = doc.get("contexts") if isinstance(doc, dict) else None
    names = [c.get("name") for c in contexts or () if isinstance(c, dict)] if isinstance(contexts, list) else []
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"invalid REFERENCE_KUBECONFIG {path!r}: it names no context")
    return [str(n) for n in names]


def reference_client(path: str, context: str) -> kubernetes.client.ApiClient:
    """An ApiClient for one context of ``REFERENCE_KUBECONFIG`` (read-only use).

    A context that cannot be set up (a missing certificate, an unknown user) is a cluster
    whose references cannot be read: exit 3, as the contract says, naming the context.
    """
    cfg = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
    except Exception as exc:
        raise SourceUnavailable(f"reference cluster {context}: cannot connect: {one_line(exc)}") from None
    return _client(cfg, context)
