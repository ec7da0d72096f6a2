"""``pushgateway``: is the Pushgateway a run pushes its metrics to ready? Optional by design.

A run that cannot push still collects (it only warns), so an unset PUSHGATEWAY_URL is
``ok: null`` and never fails the doctor; a set one that does not answer ready is false: the
alert on ``kitgc_last_success_timestamp_seconds`` would fire for a collector that works.
"""

from __future__ import annotations

import httpx

from kitgc.config import Settings
from kitgc.doctor.checks import Check


def shown(url: str) -> str:
    """``url`` without any user or password it may carry."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "PUSHGATEWAY_URL"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path.rstrip('/')}"


def check_pushgateway(settings: Settings, timeout: float = 10.0) -> Check:
    """``GET <PUSHGATEWAY_URL>/-/ready`` with the run's credentials."""
    url = settings.pushgateway_url
    if not url:
        return Check("pushgateway", None, "not set (optional): a run pushes no metrics")
    ready = f"{url.rstrip('/')}/-/ready"
    auth = (settings.pushgateway_username, settings.pushgateway_password or "") \
        if settings.pushgateway_username else None
    try:
        resp = httpx.get(ready, auth=auth, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        said = str(exc).replace(url, shown(url))  # never the password a URL may carry
        return Check("pushgateway", False, f"no answer from {shown(url)}/-/ready: {type(exc).__name__}: {said}")
    if resp.status_code == 200:
        return Check("pushgateway", True, f"{shown(url)} is ready")
    if resp.status_code == 401:
        return Check("pushgateway", False, f"{shown(url)} refuses our credentials (PUSHGATEWAY_USERNAME/PASSWORD)")
    return Check("pushgateway", False, f"{shown(url)}/-/ready answered HTTP {resp.status_code}")


__all__ = ["check_pushgateway"]
