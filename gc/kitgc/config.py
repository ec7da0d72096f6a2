"""Configuration: one table of variables, read from the environment and from flags.

The same table drives parsing, ``kitgc --help`` and the README, so the three cannot drift.
Every bad value raises :class:`ConfigError` with one line naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kitgc.errors import ConfigError
from kitgc.imageref import InvalidReference, split_address
from kitgc.keep import KeepPattern, parse_keep_patterns
from kitgc.shard import Shard

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"expected true/false (or 1/0, yes/no, on/off), got {value!r}")


def parse_duration(value: str) -> timedelta:
    """``0``, ``90s``, ``30m``, ``24h``, ``7d`` or combinations such as ``1d12h``."""
    v = value.strip().lower()
    if v == "0":
        return timedelta(0)
    m = _DURATION.match(v)
    if not v or not m or not any(m.groups()):
        raise ValueError(f"expected a duration such as 0, 90s, 30m, 24h or 7d, got {value!r}")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    try:
        return timedelta(days=d, hours=h, minutes=mi, seconds=s)
    except OverflowError:
        raise ValueError(f"duration {value!r} is too large") from None


def _positive_duration(value: str) -> timedelta:
    """A duration of at least one second (a timeout or lease of 0 would fail every request)."""
    d = parse_duration(value)
    if d < timedelta(seconds=1):
        raise ValueError(f"must be at least 1s, got {value!r}")
    return d


def _positive_int(lo: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if n < lo:
            raise ValueError(f"must be at least {lo}, got {n}")
        return n

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        v = value.strip().lower()
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return v

    return parse


def _address(value: str) -> str:
    try:
        host, prefix = split_address(value)
    except InvalidReference as exc:
        raise ValueError(str(exc)) from None
    return f"{host}/{prefix}" if prefix else host


def _organizations(value: str) -> tuple[str, ...]:
    orgs = tuple(o.strip().strip("/") for o in value.split(","))
    if not orgs or any(not o for o in orgs):
        raise ValueError(f"expected comma-separated organizations, got {value!r}")
    for org in orgs:
        for part in org.split("/"):
            if not re.match(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$", part):
                raise ValueError(f"invalid organization {org!r}")
    return orgs


def _configmap_ref(value: str) -> tuple[str, str]:
    ns, sep, name = value.strip().partition("/")
    if not sep or not _NAME.match(ns) or not _NAME.match(name):
        raise ValueError(f"expected namespace/name, got {value!r}")
    return ns, name


def _readable_file(value: str) -> str:
    path = value.strip()
    if not os.path.isfile(path):
        raise ValueError(f"file {path!r} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file {path!r} is not readable")
    return path


def _url(value: str) -> str:
    v = value.strip()
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return v.rstrip("/")


def _text(value: str) -> str:
    return value


def _label(value: str) -> str:
    v = value.strip()
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", v):
        raise ValueError(f"expected a short name of letters, digits, '.', '_' or '-', got {value!r}")
    return v


def _writable_path(value: str) -> str:
    path = value.strip()
    directory = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path):
        raise ValueError(f"expected a file path, got {value!r}")
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise ValueError(f"directory {directory!r} does not exist or is not writable")
    return path


REGISTRY_KINDS = ("auto", "distribution", "dockerhub", "ghcr", "quay", "harbor", "gcr", "acr", "ecr", "zot", "nexus",
                  "artifactory", "openshift")


@dataclass(frozen=True)
class Variable:
    env: str
    attr: str
    default: str | None  # as the user would write it; None = unset
    help: str
    parse: Callable[[str], Any]
    secret: bool = False
    shown_default: str | None = None  # what --help says when the default is computed

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")


VARIABLES: tuple[Variable, ...] = (
    Variable("DRY_RUN", "dry_run", "true", "write nothing anywhere: no registry DELETE, no Kubernetes write",
             parse_bool),
    Variable("REGISTRY_ADDRESS", "registry_address", None,
             "host[:port][/prefix] of the registry", _address,
             shown_default="from IntegrationPlatforms/IntegrationProfiles, else the Camel K operator's env"),
    Variable("REGISTRY_ORGANIZATION", "organizations", None,
             "comma-separated organizations (repository path prefixes) to clean", _organizations,
             shown_default="every organization the platforms name"),
    Variable("REGISTRY_INSECURE", "registry_insecure", None, "plain HTTP instead of HTTPS", parse_bool,
             shown_default="false (or the platform's registry.insecure)"),
    Variable("REGISTRY_CA_FILE", "registry_ca_file", None, "PEM bundle to trust for the registry's TLS",
             _readable_file, shown_default="system trust"),
    Variable("REGISTRY_AUTH_FILE", "registry_auth_file", None,
             "a .dockerconfigjson file with the registry's credentials", _readable_file,
             shown_default="none"),
    Variable("MIN_AGE", "min_age", "24h", "grace period before an unreferenced image is deleted",
             parse_duration),
    Variable("PRUNE_KITS", "prune_kits", "true", "also delete IntegrationKit objects that nothing uses",
             parse_bool),
    Variable("MAX_DELETIONS", "max_deletions", "500", "at most this many manifests deleted in one run",
             _positive_int(0)),
    Variable("STATE_CONFIGMAP", "state_configmap", None, "namespace/name of the first-seen state ConfigMap",
             _configmap_ref, shown_default="<POD_NAMESPACE or default>/camel-k-kit-gc-state"),
    Variable("PUSHGATEWAY_URL", "pushgateway_url", None, "push metrics to this Pushgateway at the end of a run",
             _url, shown_default="unset: no push"),
    Variable("PUSHGATEWAY_USERNAME", "pushgateway_username", None, "basic-auth user for the Pushgateway",
             _text, shown_default="none"),
    Variable("PUSHGATEWAY_PASSWORD", "pushgateway_password", None, "basic-auth password for the Pushgateway",
             _text, secret=True, shown_default="none"),
    Variable("CLUSTER_NAME", "cluster_name", "default", "grouping key 'instance' for pushed metrics", _label),
    Variable("CONCURRENCY", "concurrency", "16", "parallel registry requests", _positive_int(1)),
    Variable("CONCURRENCY_MAX", "concurrency_max", None,
             "the most parallel registry requests that adaptation may reach (= CONCURRENCY: no adaptation)",
             _positive_int(1), shown_default="4 x CONCURRENCY, at most 64"),
    Variable("LOG_FORMAT", "log_format", "json", "json (one object per line) or console (for people)",
             _choice("json", "console")),
    Variable("LOG_LEVEL", "log_level", "info", "debug, info, warning or error",
             _choice("debug", "info", "warning", "error")),
    Variable("REPORT_FILE", "report_file", None, "write the full decision report as JSON here", _writable_path,
             shown_default="unset"),
    Variable("REGISTRY_TIMEOUT", "registry_timeout", "30s", "timeout of one registry request",
             _positive_duration),
    Variable("KUBE_PAGE_SIZE", "kube_page_size", "500", "objects per Kubernetes list page", _positive_int(1)),
    Variable("ALLOW_EMPTY_CLUSTER", "allow_empty_cluster", "false",
             "let a run delete most of the registry while the cluster shows no Integration", parse_bool),
    Variable("KUBE_TIMEOUT", "kube_timeout", "30s", "timeout of one Kubernetes API request", _positive_duration),
    Variable("LEASE_DURATION", "lease_duration", "60s",
             "how long the sweep Lease lasts without renewal (renewed every third of it); a crashed run "
             "blocks the next for at most this long", _positive_duration),
    Variable("REGISTRY_KIND", "registry_kind", "auto",
             "the registry's kind (auto decides from the host; openshift: ImageStreams through the Kubernetes API)",
             _choice(*REGISTRY_KINDS)),
    Variable("REFERENCE_KUBECONFIG", "reference_kubeconfig", None,
             "a kubeconfig whose every context is another cluster whose references count like this one's "
             "(read-only; any of them unreadable: exit 3)", _readable_file, shown_default="unset"),
    Variable("KEEP_IMAGES", "keep_images", None,
             "comma-separated patterns ([host/]repository glob, '*' within a segment, '**' across, then "
             "optionally :<tag glob> or @<digest>); an in-scope manifest matching any is always kept, and its kit",
             parse_keep_patterns, shown_default="unset"),
    Variable("REGISTRY_API_URL", "registry_api_url", None,
             "base URL of the vendor REST API used where the registry API v2 cannot list or delete "
             "(GitHub Packages, Docker Hub, Harbor, Quay, ACR)", _url,
             shown_default="the vendor's own (https://api.github.com, https://hub.docker.com, "
                           "https://<registry>/api/v2.0, https://<registry>/api/v1, https://<registry>/acr/v1)"),
    Variable("REGISTRY_API_TOKEN_FILE", "registry_api_token_file", None,
             "a file holding the token for the vendor API (GitHub: PAT with read:packages, delete:packages; "
             "Quay: OAuth application token; Docker Hub: PAT)", _readable_file,
             shown_default="the password of the registry's entry in REGISTRY_AUTH_FILE"),
    Variable("SHARDS", "shards", "1",
             "split the repositories over this many cooperating runs (a Kubernetes Indexed Job); the shard is "
             "JOB_COMPLETION_INDEX or SHARD", _positive_int(1)),
    Variable("SHARD", "shard_index", None, "this run's shard, 0 to SHARDS-1", _positive_int(0),
             shown_default="JOB_COMPLETION_INDEX (set by an Indexed Job)"),
    Variable("DELETE_EMPTY_REPOSITORIES", "delete_empty_repositories", "true",
             "delete a kit repository whose manifests all went in this run, and whose kit is gone or going, "
             "where the registry has an API for it", parse_bool),
)
BY_ENV = {v.env: v for v in VARIABLES}


@dataclass(frozen=True)
class Settings:
    dry_run: bool = True
    registry_address: str | None = None
    organizations: tuple[str, ...] | None = None
    registry_insecure: bool | None = None
    registry_ca_file: str | None = None
    registry_auth_file: str | None = None
    min_age: timedelta = timedelta(hours=24)
    prune_kits: bool = True
    max_deletions: int = 500
    state_configmap: tuple[str, str] = ("default", "camel-k-kit-gc-state")
    pushgateway_url: str | None = None
    pushgateway_username: str | None = None
    pushgateway_password: str | None = field(default=None, repr=False)
    cluster_name: str = "default"
    concurrency: int = 16
    concurrency_max: int | None = None  # None: kitgc.registry.adaptive.default_ceiling(concurrency)
    log_format: str = "json"
    log_level: str = "info"
    report_file: str | None = None
    registry_timeout: timedelta = timedelta(seconds=30)
    kube_page_size: int = 500
    allow_empty_cluster: bool = False
    kube_timeout: timedelta = timedelta(seconds=30)
    lease_duration: timedelta = timedelta(seconds=60)
    reference_kubeconfig: str | None = None
    registry_kind: str = "auto"
    keep_images: tuple[KeepPattern, ...] = ()
    registry_api_url: str | None = None
    registry_api_token_file: str | None = None
    delete_empty_repositories: bool = True
    shards: int = 1
    shard_index: int = 0

    @property
    def shard(self) -> Shard:
        return Shard(self.shard_index, self.shards)


def _shard_index(values: Mapping[str, Any], env: Mapping[str, str]) -> int:
    """JOB_COMPLETION_INDEX (an Indexed Job's), else SHARD, checked against SHARDS.

    A sharded run without its index would scan and delete some other shard's repositories
    or none: a configuration error, never a guess. Both set and different (``SHARD`` left in
    a ConfigMap every pod shares) is an error too: several pods would take the same shard and
    others none.
    """
    shards = values.get("shards", 1)
    index = values.get("shard_index")
    origin = "SHARD"
    raw = (env.get("JOB_COMPLETION_INDEX") or "").strip()
    if raw and shards > 1:
        try:
            job_index = _positive_int(0)(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid JOB_COMPLETION_INDEX: {exc}") from None
        if index is not None and index != job_index:
            raise ConfigError(f"invalid SHARD: {index} differs from JOB_COMPLETION_INDEX {job_index} "
                              "(leave SHARD unset in an Indexed Job)")
        index, origin = job_index, "JOB_COMPLETION_INDEX"
    if index is None and shards > 1:
        raise ConfigError(f"invalid SHARDS: SHARDS={shards} needs the shard's index: run as an Indexed Job "
                          "(JOB_COMPLETION_INDEX) or set SHARD")
    index = index or 0
    if index >= shards:
        raise ConfigError(f"invalid {origin}: shard {index} does not exist with SHARDS={shards} (0 to {shards - 1})")
    return int(index)


def load(env: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` with ``flags`` (keyed by variable name) winning.

    An empty variable counts as unset, as Kubernetes ConfigMaps often carry empty keys.
    """
    values: dict[str, Any] = {}
    flags = flags or {}
    for var in VARIABLES:
        raw = flags.get(var.env)
        origin = f"flag {var.flag}"
        if raw is None:
            raw = env.get(var.env)
            origin = var.env
        if raw is None or raw.strip() == "":
            raw = var.default
            origin = f"{var.env} (default)"
        if raw is None:
            continue
        try:
            values[var.attr] = var.parse(raw)
        except ValueError as exc:
            shown = "<hidden>" if var.secret else None
            msg = str(exc) if shown is None else "invalid value"
            raise ConfigError(f"invalid {origin}: {msg}") from None
    if "state_configmap" not in values:
        ns = (env.get("POD_NAMESPACE") or "").strip() or "default"
        if not _NAME.match(ns):
            raise ConfigError(f"invalid POD_NAMESPACE: {ns!r} is not a namespace name")
        values["state_configmap"] = (ns, "camel-k-kit-gc-state")
    values["shard_index"] = _shard_index(values, env)
    if values.get("concurrency_max") is not None and values["concurrency_max"] < values.get("concurrency", 16):
        raise ConfigError(f"invalid CONCURRENCY_MAX: {values['concurrency_max']} is below CONCURRENCY "
                          f"{values.get('concurrency', 16)}")
    if values.get("shards", 1) > 1:  # each shard keeps its own first-seen state (see kitgc.shard)
        ns, name = values["state_configmap"]
        values["state_configmap"] = (ns, f"{name}{Shard(values['shard_index'], values['shards']).suffix()}")
    if values.get("pushgateway_password") and not values.get("pushgateway_username"):
        raise ConfigError("invalid PUSHGATEWAY_PASSWORD: set PUSHGATEWAY_USERNAME too")
    return Settings(**values)
