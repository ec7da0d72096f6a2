"""The first-seen state: when this collector first saw each manifest unreferenced.

Kept in one ConfigMap because Jib images carry no usable creation time and the registry
API gives no push time: our own observation over runs is the only age evidence for an
image without a kit. The encoding is compact (gzip + base64 of JSON grouped by
repository, keys already truncated by :func:`kitgc.model.state_key`, epoch seconds) so
20,000 entries fit the 1 MiB ConfigMap limit with room to spare, even when every entry is
in a repository of its own (the usual case: one repository per kit).

Losing evidence is safe (an image looks younger and waits longer); inventing or aging it is
not. So a ConfigMap we cannot read is never overwritten, and when the state outgrows the
limit the newest entries are dropped first.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import kubernetes
import structlog

from kitgc import pending
from kitgc.errors import KubernetesError
from kitgc.identity import ManifestKey
from kitgc.kube.http import KubeHttp, Response, TransportError
from kitgc.model import State

log = structlog.get_logger("kitgc.state")

DATA_KEY = "first-seen.json.gz"  # in binaryData
FORMAT = "kitgc-first-seen/v1"
# The API server refuses a ConfigMap whose data values and decoded binaryData add up to more
# than 1 MiB; keep a margin. 20,000 entries in 20,000 different repositories take ~750 KB.
MAX_BYTES = 1024 * 1024 - 64 * 1024
_LABELS = {"app.kubernetes.io/name": "camel-k-kit-gc", "app.kubernetes.io/component": "state"}


class StateUnreadable(ValueError):
    """The ConfigMap exists but does not hold state we can read."""


def _to_epoch(when: datetime) -> int:
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def encode(state: State, limit: int = MAX_BYTES) -> dict[str, Any]:
    """``{"binaryData": …, "data": …}`` for the ConfigMap; the newest entries go if over ``limit``."""
    times = state.first_seen
    # Oldest first, ties by key; the keys alone, not a tuple each (77,000 tuples and epochs
    # were 7 MB at the end of a 100,000-manifest run).
    keys = sorted(times)
    keys.sort(key=times.__getitem__)
    kits = sorted(state.kits_seen)
    refused = _refused_doc(state)
    out = _encode(keys, times, kits, refused)
    if _size(out) <= limit:
        return out
    lo, hi = 0, len(keys)  # binary search: how many of the oldest entries fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _size(_encode(keys[:mid], times, kits, refused)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    log.warning("state_truncated", kept=lo, dropped=len(keys) - lo,
                note="the newest first-seen times were dropped; those images wait longer")
    return _encode(keys[:lo], times, kits, refused)


def _refused_doc(state: State) -> dict[str, dict[str, list[Any]]]:
    """``{repository: {digest: [epoch, message]}}`` of the manifests the registry refuses."""
    doc: dict[str, dict[str, list[Any]]] = {}
    for key, (when, message) in sorted(state.refused.items()):
        repo, _, digest = key.rpartition("@")
        doc.setdefault(repo, {})[digest] = [_to_epoch(when), message[:200]]
    return doc


def _encode(keys: list[str], times: Mapping[str, datetime], kits: list[str],
            refused: dict[str, dict[str, list[Any]]] | None = None) -> dict[str, Any]:
    """The ConfigMap's keys for the first-seen ``times`` of ``keys``.

    Written piece by piece into the compressor, one repository at a time: the document is
    ``{"format", "kits", "refused", "repositories": {repository: {digest: epoch}}}``, and
    built whole (a dict per repository, the keys split, the JSON text and its bytes) it was
    30 MB at the 77,000 entries of a 100,000-manifest registry, at the end of the run, once
    per try of the search for what fits.
    """
    sink = zlib.compressobj(9, zlib.DEFLATED, 31)  # the gzip format, as gzip.compress writes it
    parts = [sink.compress(b'{"format":' + json.dumps(FORMAT).encode())]
    if kits:  # optional keys: readers of the same format without them ignore them
        parts.append(sink.compress(b',"kits":' + json.dumps(kits, separators=(",", ":")).encode()))
    if refused:
        parts.append(sink.compress(b',"refused":' + json.dumps(refused, separators=(",", ":")).encode()))
    parts.append(sink.compress(b',"repositories":{'))
    for i, (repo, digests) in enumerate(_by_repository(keys, times)):
        piece = json.dumps({repo: digests}, separators=(",", ":"))[1:-1]
        parts.append(sink.compress((b"," if i else b"") + piece.encode()))
    parts.append(sink.compress(b"}}"))
    parts.append(sink.flush())
    blob = base64.b64encode(b"".join(parts)).decode("ascii")
    return {"binaryData": {DATA_KEY: blob}, "data": {"format": FORMAT, "entries": str(len(keys))}}


def _by_repository(keys: list[str], times: Mapping[str, datetime]) -> Iterator[tuple[str, dict[str, int]]]:
    """``(repository, {digest: epoch})`` for ``keys``, each repository once.

    A key is ``repository@digest`` and a repository name holds no ``@``: sorted, a
    repository's keys are one run, taken one after the other. A key with no ``@`` (it goes
    under "") or more than one, which no run of this version writes, is gathered instead.
    """
    ordered = sorted(keys)
    if any(key.count("@") != 1 for key in ordered):
        gathered: dict[str, dict[str, int]] = {}
        for key in ordered:
            repo, _, digest = key.rpartition("@")
            gathered.setdefault(repo, {})[digest] = _to_epoch(times[key])
        yield from gathered.items()
        return
    current, digests = "", dict[str, int]()
    for key in ordered:
        repo, _, digest = key.partition("@")
        if repo != current and digests:
            yield current, digests
            digests = {}
        current = repo
        digests[digest] = _to_epoch(times[key])
    if digests:
        yield current, digests


def _size(cm: dict[str, Any]) -> int:
    """Bytes as the API server counts them against its limit: binaryData decoded."""
    data = sum(len(k) + len(v.encode()) for k, v in cm["data"].items())
    return data + sum(len(k) + len(base64.b64decode(v)) for k, v in cm["binaryData"].items())


def decode(configmap: dict[str, Any]) -> State:
    """The State in a ConfigMap (raw JSON); :class:`StateUnreadable` when it is not ours.

    A ConfigMap without our key (e.g. created empty by the manifests) is an empty State.
    """
    blob = (configmap.get("binaryData") or {}).get(DATA_KEY)
    if blob is None:
        return State()
    try:
        doc = json.loads(gzip.decompress(base64.b64decode(blob, validate=True)))
    except (binascii.Error, OSError, EOFError, ValueError, TypeError) as exc:
        raise StateUnreadable(f"{DATA_KEY} is not gzip+base64 JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("repositories"), dict):
        raise StateUnreadable(f"{DATA_KEY} is not in the {FORMAT} format")
    first_seen: dict[str, datetime] = {}
    for repo, digests in doc["repositories"].items():
        if not isinstance(digests, dict):
            raise StateUnreadable(f"{DATA_KEY}: repository {repo!r} does not map digests to times")
        for digest, epoch in digests.items():
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                raise StateUnreadable(f"{DATA_KEY}: {ManifestKey(repo, digest)} has no valid time")
            first_seen[str(ManifestKey(repo, digest)) if repo else digest] = datetime.fromtimestamp(epoch, UTC)
    kits = doc.get("kits", [])
    if not isinstance(kits, list) or not all(isinstance(k, str) for k in kits):
        raise StateUnreadable(f"{DATA_KEY}: 'kits' is not a list of repository names")
    return State(first_seen, kits_seen=frozenset(kits), refused=_decode_refused(doc.get("refused", {})))


def _decode_refused(doc: Any) -> dict[str, tuple[datetime, str]]:
    if not isinstance(doc, dict):
        raise StateUnreadable(f"{DATA_KEY}: 'refused' is not a map of repositories")
    out: dict[str, tuple[datetime, str]] = {}
    for repo, digests in doc.items():
        if not isinstance(digests, dict):
            raise StateUnreadable(f"{DATA_KEY}: refused repository {repo!r} does not map digests")
        for digest, entry in digests.items():
            ok = (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                  and not isinstance(entry[0], bool) and entry[0] >= 0 and isinstance(entry[1], str))
            if not ok:
                raise StateUnreadable(f"{DATA_KEY}: refused {ManifestKey(repo, digest)} has no valid time and text")
            out[str(ManifestKey(repo, digest)) if repo else digest] = (datetime.fromtimestamp(entry[0], UTC), entry[1])
    return out


def merge(ours: State, theirs: State) -> State:
    """Ours decides which keys exist; on a key both hold, the earliest time wins.

    Our key set comes from this run's plan (a manifest that is referenced again, or gone,
    must lose its time, or it would look old the day it is unreferenced again); the other
    writer's earlier observation of the same manifest is real evidence, so it is kept.
    """
    return State({k: min(t, theirs.first_seen.get(k, t)) for k, t in ours.first_seen.items()},
                 kits_seen=ours.kits_seen | theirs.kits_seen, refused={**theirs.refused, **ours.refused})


class StateStore:
    """Load and save the state ConfigMap ``namespace/name``."""

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str, name: str, *,
                 retries: int = 3, backoff: float = 0.5, timeout: float = 30.0) -> None:
        self.http = KubeHttp(api_client, retries=retries, backoff=backoff, timeout=timeout)
        self.namespace, self.name = namespace, name
        self.protected = False  # True: what is there could not be read; never overwrite it
        self._loaded = False
        self._existing: dict[str, Any] | None = None  # the ConfigMap as last read; None: absent
        # Children of deleted indexes still to find (kitgc.pending), saved with the state.
        self._pending: pending.Pending = {}

    @property
    def _collection(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps"

    def _request(self, method: str, path: str, body: Any = None) -> Response:
        try:
            return self.http.request(method, path, body=body)
        except TransportError as exc:
            raise KubernetesError(f"cannot {method} ConfigMap {self.namespace}/{self.name}: {exc}") from None

    def _read(self) -> tuple[State, dict[str, Any] | None]:
        """(state, the raw ConfigMap or None); raises KubernetesError, StateUnreadable."""
        resp = self._request("GET", f"{self._collection}/{self.name}")
        if resp.status == 404:
            return State(), None
        if not resp.ok:
            raise KubernetesError(f"cannot read ConfigMap {self.namespace}/{self.name}: {resp.status_message()}",
                                  status=resp.status)
        try:
            cm = resp.json()
        except ValueError:
            raise StateUnreadable("the API server's answer is not JSON") from None
        if not isinstance(cm, dict):
            raise StateUnreadable("the API server's answer is not an object")
        return decode(cm), cm

    def load(self) -> State:
        """The stored State; an empty one when there is none or it cannot be read (warned)."""
        self._loaded = True
        try:
            state, self._existing = self._read()
        except (StateUnreadable, KubernetesError) as exc:
            self.protected = True
            log.warning("state_unreadable", configmap=f"{self.namespace}/{self.name}", error=str(exc),
                        note="starting from empty first-seen times; the ConfigMap will not be overwritten")
            return State()
        self._pending = pending.decode(((self._existing or {}).get("data") or {}).get(pending.KEY))
        log.debug("state_loaded", configmap=f"{self.namespace}/{self.name}", entries=len(state.first_seen))
        return state

    def remembered(self) -> pending.Pending:
        """The children of deleted indexes that the loaded ConfigMap remembers (a copy)."""
        return {repo: set(digests) for repo, digests in self._pending.items()}

    def save(self, state: State, remembered: pending.Pending | None = None) -> None:
        """Create or update the ConfigMap; on a conflict, merge with the newer copy once.

        ``remembered`` replaces the remembered index children (None: keep what was loaded).
        """
        if not self._loaded:
            self.load()
        if remembered is not None:
            self._pending = {repo: set(digests) for repo, digests in remembered.items()}
        if self.protected:
            log.warning("state_not_saved", configmap=f"{self.namespace}/{self.name}",
                        reason="the existing ConfigMap could not be read at load time")
            return
        resp = self._write(state)
        if resp.status != 409:
            return self._check(resp)
        try:
            theirs, self._existing = self._read()
        except StateUnreadable as exc:
            raise KubernetesError(f"cannot save state to ConfigMap {self.namespace}/{self.name}: it changed "
                                  f"while we ran and cannot be read: {exc}") from None
        log.info("state_conflict_merged", configmap=f"{self.namespace}/{self.name}")
        self._pending = pending.union(self._pending, pending.decode(
            ((self._existing or {}).get("data") or {}).get(pending.KEY)))
        self._check(self._write(merge(state, theirs)))

    def _write(self, state: State) -> Response:
        """POST a new ConfigMap, or PUT the one last read with only our keys replaced.

        Labels, annotations and other keys someone else put there are kept; the PUT carries
        the resourceVersion we read, so a concurrent change answers 409 instead of being lost.
        """
        encoded = encode(state)
        if self._existing is None:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(_LABELS)},
                **encoded,
            }
            self._with_pending(body)
            return self._request("POST", self._collection, body)
        body = dict(self._existing)
        for part in ("data", "binaryData"):
            body[part] = {**(self._existing.get(part) or {}), **encoded[part]}
        self._with_pending(body)
        return self._request("PUT", f"{self._collection}/{self.name}", body)

    def _with_pending(self, body: dict[str, Any]) -> None:
        data = body["data"] = dict(body.get("data") or {})
        if self._pending:
            data[pending.KEY] = pending.encode(self._pending)
        else:
            data.pop(pending.KEY, None)

    def _check(self, resp: Response) -> None:
        if not resp.ok:
            raise KubernetesError(
                f"cannot save state to ConfigMap {self.namespace}/{self.name}: {resp.status_message()}",
                status=resp.status,
            )
        try:
            cm = resp.json()
        except ValueError:
            cm = None
        self._existing = cm if isinstance(cm, dict) and "metadata" in cm else None
        log.debug("state_saved", configmap=f"{self.namespace}/{self.name}")
