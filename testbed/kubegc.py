"""Kubernetes garbage collection for the API emulator: deleting an owner deletes its dependents.

An object depends on an owner when one of its ``metadata.ownerReferences`` names it: by
``uid``, or, for a reference whose uid is absent or names no stored object, by API group, kind
and name, in the dependent's namespace (anywhere, for a cluster-scoped owner). The fallback is
there because :mod:`testbed.objects` writes a uid computed from kind and name
(:func:`testbed.objects.uid`), which a stored object carries only when its builder set it.

As the real collector does with ``Background`` (or ``Foreground``) propagation, here done
synchronously within the DELETE: dependents are deleted recursively, except one that still has
another owner that exists, which only loses its references to the deleted owner;
``propagationPolicy: Orphan`` (or ``orphanDependents: true``) removes those references from
every dependent and deletes nothing. Objects without owners are never touched.
"""

from __future__ import annotations

from typing import Any

from testbed.kubestore import ApiError, Resource, Store

Key = tuple[Resource, str, str]  # resource, namespace ("" when cluster-scoped), name
Obj = dict[str, Any]


def _group(api_version: str | None) -> str:
    return (api_version or "").rpartition("/")[0]


def _key(res: Resource, obj: Obj) -> Key:
    meta = obj["metadata"]
    return res, (meta.get("namespace") or "") if res.namespaced else "", meta["name"]


def propagation(query: dict[str, str], body: Any) -> str:
    """The ``propagationPolicy`` of a DELETE, from its DeleteOptions body or its query."""
    opts = body if isinstance(body, dict) else {}
    if opts.get("orphanDependents") is True or query.get("orphanDependents") == "true":
        return "Orphan"
    return str(opts.get("propagationPolicy") or query.get("propagationPolicy") or "Background")


class OwnerIndex:
    """Dependents by the uid and by the (group, kind, name) their ownerReferences name, kept
    current by the store's watchers, so that a DELETE finds them without scanning the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_uid: dict[str, set[Key]] = {}
        self._by_name: dict[tuple[str, str, str], set[Key]] = {}
        self._uids: dict[str, Key] = {}  # every stored object that has a uid
        with store.lock:
            for res in store.resources:
                for obj in store.objects(res):
                    self._changed(res, None, obj)
            store.watchers.append(self._changed)

    def _changed(self, res: Resource, old: Obj | None, new: Obj | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            key, meta = _key(res, obj), obj["metadata"]
            if meta.get("uid"):
                if add:
                    self._uids[meta["uid"]] = key
                elif self._uids.get(meta["uid"]) == key:
                    del self._uids[meta["uid"]]
            for ref in meta.get("ownerReferences") or []:
                self._file(self._by_uid, ref.get("uid"), key, add)
                self._file(self._by_name, (_group(ref.get("apiVersion")), ref.get("kind"), ref.get("name")), key, add)

    @staticmethod
    def _file(index: dict[Any, set[Key]], at: Any, key: Key, add: bool) -> None:
        if not at:
            return
        if add:
            index.setdefault(at, set()).add(key)
        elif at in index:
            index[at].discard(key)
            if not index[at]:
                del index[at]

    def _names(self, ref: Obj, owner_res: Resource, owner: Obj, namespace: str) -> bool:
        """Does ``ref`` (in an object of ``namespace``) name ``owner``?"""
        meta = owner["metadata"]
        uid = ref.get("uid")
        if uid and uid == meta.get("uid"):
            return True
        if uid and uid in self._uids:  # it names another object that exists
            return False
        same_ns = not owner_res.namespaced or namespace == meta.get("namespace")
        return (same_ns and _group(ref.get("apiVersion")) == owner_res.group and ref.get("kind") == owner_res.kind
                and ref.get("name") == meta["name"])

    def _exists(self, ref: Obj, namespace: str) -> bool:
        """Does the owner ``ref`` names exist? (An owner of a kind the emulator lacks, a Node: yes.)"""
        if ref.get("uid") in self._uids:
            return True
        group, kind = _group(ref.get("apiVersion")), ref.get("kind")
        kinds = [r for r in self.store.resources if (r.group, r.kind) == (group, kind)]
        for res in kinds:
            try:
                self.store.get(res, namespace if res.namespaced else None, str(ref.get("name")))
                return True
            except ApiError:
                pass
        return not kinds

    def dependents(self, res: Resource, owner: Obj) -> list[Key]:
        meta = owner["metadata"]
        keys = set(self._by_uid.get(meta.get("uid") or "", ()))
        keys |= self._by_name.get((res.group, res.kind, meta["name"]), set())
        return sorted(keys, key=lambda k: (k[0].group, k[0].plural, k[1], k[2]))

    def collect(self, res: Resource, owner: Obj, policy: str = "Background") -> list[Key]:
        """After ``owner`` was deleted: delete its dependents, recursively (or, with ``Orphan``,
        release them). Call with the store's lock held. Returns the keys of what it deleted."""
        deleted: list[Key] = []
        queue = [(res, owner)]
        while queue:
            owner_res, gone = queue.pop(0)
            for key in self.dependents(owner_res, gone):
                dep_res, ns, name = key
                try:
                    dep = self.store.get(dep_res, ns or None, name)
                except ApiError:
                    continue
                refs = dep["metadata"].get("ownerReferences") or []
                keep = [r for r in refs if not self._names(r, owner_res, gone, ns)]
                if len(keep) == len(refs):
                    continue
                if policy == "Orphan" or any(self._exists(r, ns) for r in keep):
                    self.store.patch(dep_res, ns or None, name, {"metadata": {"ownerReferences": keep or None}})
                    continue
                queue.append((dep_res, self.store.delete(dep_res, ns or None, name)))
                deleted.append(key)
        return deleted
