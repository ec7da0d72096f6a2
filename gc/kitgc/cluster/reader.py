"""Read every reference source cluster-wide, completely, or not at all.

A reference that is missed can delete an image that is in use, so a source that cannot be
read to the end raises :class:`SourceUnavailable` (exit 3) naming it, in one line. What
is transient (5xx, 429, timeouts, resets) is retried with backoff; an expired continue
token restarts that source's list from the beginning, so that what one source contributes
always comes from one consistent list. Only optional APIs (Knative, IntegrationProfiles,
Pipes, KameletBindings, OpenShift's) may be absent, and only when API discovery says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kubernetes
import structlog

from kitgc.cluster import discovery
from kitgc.cluster import sources as S
from kitgc.cluster.extract import Found, extract
from kitgc.cluster.fold import Folder, drop_idle_links, prune_owner_links
from kitgc.cluster.found import forget_parsed
from kitgc.cluster.later import Earlier
from kitgc.cluster.local_lookup import with_local_lookups
from kitgc.cluster.projection import decode_page
from kitgc.errors import KubernetesError, SourceUnavailable
from kitgc.kube.http import KubeHttp, Response, TransportError
from kitgc.model import ClusterSnapshot, ObjectRef, Reference

log = structlog.get_logger("kitgc.cluster")

# An API server whose continue tokens never end must not hold a run forever: no real list
# has this many pages (100,000 pages of KUBE_PAGE_SIZE=500 are 50 million objects).
MAX_PAGES = 100_000
LATER_READ_WORKERS = 2  # sources read at once by a read that will be merged with an earlier one


class _Cancelled(Exception):
    """Another source failed: stop reading this one, the pass aborts anyway."""


@dataclass
class _SourceResult:
    found: Found = field(default_factory=Found)
    objects: int = 0
    fold: Folder | None = None  # None: every reference is kept


def _unavailable(source: S.Source, why: str) -> SourceUnavailable:
    hint = ""
    if source.group == S.CAMEL and why.startswith("404"):
        hint = "; are Camel K's CRDs installed?"
    return SourceUnavailable(f"cannot read {source}: {why}{hint}")


def _shared(found: Found) -> dict[ObjectRef, ObjectRef]:
    """``found.owners`` with each owner replaced by the equal ObjectRef its own object was read
    as (the ReplicaSet that owns a pod is also a child, and the source of its references),
    so that an object named in several places is one ObjectRef in memory."""
    known: dict[ObjectRef, ObjectRef] = {child: child for child in found.owners}
    for ref in found.references:
        known.setdefault(ref.source, ref.source)
    for use in found.kit_uses:
        known.setdefault(use.user, use.user)
    return {child: known.get(owner, owner) for child, owner in found.owners.items()}


class ClusterReader:
    """Paginated raw lists of :data:`kitgc.cluster.sources.SOURCES`, and kit deletion."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        page_size: int = 500,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
        relists: int = 3,
        workers: int = 4,
        sources: tuple[S.Source, ...] = S.SOURCES,
        fold: bool = True,
    ) -> None:
        self.http = KubeHttp(api_client, retries=retries, backoff=backoff, timeout=timeout)
        self.page_size = page_size
        self.relists = relists
        self.workers = max(1, workers)
        self.sources = sources
        self.fold = fold  # see kitgc.cluster.fold: a few examples per image, the rest counted
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {"objects": {}, "pages": 0, "relists": 0, "skipped": []}
        self._registries: list[discovery.PlatformRegistry] = []  # what platform_registries() found last

    @property
    def stats(self) -> dict[str, Any]:
        """Objects read per source, pages, relists, retries, optional sources skipped."""
        with self._lock:
            out = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                   for k, v in self._stats.items()}
        out["retries"] = self.http.stats["retries"]
        return out

    # --- lists -------------------------------------------------------------------------

    def _pages(self, source: S.Source, stop: threading.Event | None = None,
               projected: bool = False, selector: str | None = None) -> Iterator[tuple[int, list[Any]]]:
        """(attempt, items) page by page; ``attempt`` grows when the list restarts after a 410.

        ``projected``: items carry only what extraction reads (see :mod:`kitgc.cluster.projection`).
        ``selector``: a label selector.
        """
        token: str | None = None
        attempt = pages = 0
        while True:
            if stop is not None and stop.is_set():
                raise _Cancelled()
            pages += 1
            if pages > MAX_PAGES:
                raise _unavailable(source, f"more than {MAX_PAGES} pages; refusing to read on")
            query: list[tuple[str, Any]] = [("limit", self.page_size)]
            if selector:
                query.append(("labelSelector", selector))
            if token:
                query.append(("continue", token))
            resp = self._get(source, query)
            if resp.status == 410 and token:
                attempt += 1
                self._bump("relists")
                if attempt > self.relists:
                    raise _unavailable(source, f"{resp.status_message()} (list restarted {self.relists} times)")
                log.info("list_restarted", source=str(source), reason=resp.status_reason() or "Gone")
                token = None
                continue
            if not resp.ok:
                raise _unavailable(source, resp.status_message())
            fast = decode_page(source, resp.data) if projected else None
            items, token = fast if fast is not None else self._page(source, resp)
            # The body (a megabyte or two for 500 Pods) is let go before the page is handed
            # over: held here, it stayed alive through the page's extraction and the next
            # page's download, two bodies per reading thread instead of one.
            del resp, fast
            self._bump("pages")
            yield attempt, items
            if not token:
                return

    def _get(self, source: S.Source, query: list[tuple[str, Any]]) -> Response:
        try:
            return self.http.request("GET", source.path, query=query)
        except TransportError as exc:
            raise _unavailable(source, f"no answer from the API server: {exc}") from None

    @staticmethod
    def _page(source: S.Source, resp: Response) -> tuple[list[Any], str | None]:
        try:
            body = resp.json()
        except ValueError:
            snippet = " ".join(resp.data[:80].decode("utf-8", "replace").split())
            raise _unavailable(source, f"the API server answered {resp.status} with a body that is not JSON: "
                                       f"{snippet!r}") from None
        items = body.get("items") if isinstance(body, dict) else None
        if isinstance(body, dict) and items is None and "items" in body:
            items = []  # an empty list may be serialised as null
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _unavailable(source, f"the API server answered {resp.status} with something that is not a list")
        meta = body.get("metadata") or {}
        token = meta.get("continue") if isinstance(meta, dict) else None
        return items, token if isinstance(token, str) and token else None

    def list_raw(self, source: S.Source) -> Iterator[dict[str, Any]]:
        """Raw JSON items of ``source``, cluster-wide, page by page.

        After an expired continue token the list restarts, so items already yielded may
        come again (a newer version of them): treat the result as a set.
        """
        for _attempt, items in self._pages(source):
            yield from items

    def _list_all(self, source: S.Source, selector: str | None = None) -> list[dict[str, Any]]:
        """The complete list from one consistent listing (small sources only)."""
        out: list[dict[str, Any]] = []
        current = 0
        for attempt, items in self._pages(source, selector=selector):
            if attempt != current:
                out, current = [], attempt
            out += items
        return out

    def served(self, source: S.Source) -> bool:
        """Whether the API server serves ``source``; asked of API discovery, for optional APIs."""
        gv = f"/apis/{source.group}/{source.version}" if source.group else f"/api/{source.version}"
        try:
            resp = self.http.request("GET", gv)
        except TransportError as exc:
            raise SourceUnavailable(f"cannot discover {source.group_version} (for {source}): {exc}") from None
        if resp.status == 404:
            return False
        if not resp.ok:
            raise SourceUnavailable(f"cannot discover {source.group_version} (for {source}): {resp.status_message()}")
        try:
            body = resp.json()
            names = {r.get("name") for r in body.get("resources") or [] if isinstance(r, dict)}
        except (ValueError, AttributeError):
            raise SourceUnavailable(
                f"cannot discover {source.group_version} (for {source}): the answer is not an APIResourceList"
            ) from None
        return source.plural in names

    # --- snapshot ----------------------------------------------------------------------

    def snapshot(self, keep: Callable[[Reference], bool] | None = None,
                 before: ClusterSnapshot | None = None) -> ClusterSnapshot:
        """Every reference in the cluster, or :class:`SourceUnavailable` naming what failed.

        ``keep``: only the references it accepts are kept, as each page is read (a deleting
        run's later reads, :mod:`kitgc.sweep.relevance`); bare names, which may resolve to
        something else later, kits, kit uses and unparsable values are always kept.
        ``before``: an earlier read this one will be merged with; an image it already names
        gets no more examples here (:mod:`kitgc.cluster.fold`), and with ``keep`` what the
        merge would drop is dropped page by page (:mod:`kitgc.cluster.later`).
        """
        now = datetime.now(UTC)
        todo = []
        for source in self.sources:
            if source.optional and not self.served(source):
                log.info("optional_api_absent", source=str(source))
                with self._lock:
                    self._stats["skipped"].append(str(source))
                continue
            todo.append(source)
        stop = threading.Event()
        earlier = Earlier.of(before) if before is not None else None
        # A later read holds its pages beside the plan being carried out, where a deleting
        # run peaks: two at a time there. The Pods alone take one reader as long as every
        # other source together takes the other, so the read takes no longer for it.
        workers = self.workers if earlier is None else min(self.workers, LATER_READ_WORKERS)
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(todo)))) as pool:
            futures = [pool.submit(self._read_source, s, now, stop, keep, earlier) for s in todo]
            outcomes: list[_SourceResult | BaseException] = []
            for fut in futures:
                try:
                    outcomes.append(fut.result())
                except BaseException as exc:
                    stop.set()
                    outcomes.append(exc)
        errors = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, _Cancelled)]
        if errors:
            raise errors[0]  # the first failing source in table order

        total = Found()
        examples = earlier.examples if earlier is not None else None
        across = Folder(before=examples) if self.fold else None  # the examples per image, over all sources
        integrations = objects = folded = 0
        for source, result in zip(todo, outcomes, strict=True):
            assert isinstance(result, _SourceResult)
            total.extend(across(result.found) if across is not None else result.found)
            objects += result.objects
            folded += result.fold.folded if result.fold is not None else 0
            if source == S.INTEGRATIONS:
                integrations = result.objects
        references = with_local_lookups(total)
        forget_parsed()
        owners = _shared(total)
        if self.fold:
            owners = prune_owner_links(owners, (*(r.source for r in references), *(u.user for u in total.kit_uses),
                                                *(u.source for u in total.unparsable)))
        return ClusterSnapshot(
            references=references,
            kits=tuple(total.kits),
            kit_uses=tuple(total.kit_uses),
            unparsable=tuple(total.unparsable),
            integrations=integrations,
            objects_read=objects,
            owners=owners,
            folded=folded + (across.folded if across is not None else 0),
        )

    def _read_source(self, source: S.Source, now: datetime, stop: threading.Event,
                     keep: Callable[[Reference], bool] | None = None,
                     earlier: Earlier | None = None) -> _SourceResult:
        examples = earlier.examples if earlier is not None else None

        def fresh() -> _SourceResult:
            return _SourceResult(fold=Folder(before=examples) if self.fold else None)

        result, current = fresh(), 0
        try:
            for attempt, items in self._pages(source, stop, projected=True):
                if attempt != current:  # a restarted list replaces what the expired one gave
                    result, current = fresh(), attempt
                page = Found()
                for obj in items:
                    page.extend(extract(source, obj, now))
                if keep is not None:
                    short = {id(r) for r in page.short}
                    page.references = [r for r in page.references if id(r) in short or keep(r)]
                    if earlier is not None:
                        earlier.drop_known(page)  # what the merge with it would drop anyway
                    else:
                        drop_idle_links(page)
                # Folded page by page: what the run holds grows with the images, not the Pods.
                result.found.extend(result.fold(page) if result.fold is not None else page)
                result.objects += len(items)
        except BaseException:
            stop.set()
            raise
        with self._lock:
            self._stats["objects"][str(source)] = result.objects
        log.debug("source_read", source=str(source), objects=result.objects)
        return result

    def _bump(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    # --- platforms and writes ----------------------------------------------------------

    def platform_registries(self) -> list[discovery.PlatformRegistry]:
        """Registries named by IntegrationPlatforms and (when served) IntegrationProfiles; when
        no platform names an address, by the Camel K operator Deployments' environment too."""
        platforms = self._list_all(S.INTEGRATION_PLATFORMS)
        profiles = self._list_all(S.INTEGRATION_PROFILES) if self.served(S.INTEGRATION_PROFILES) else []
        found = discovery.registries(platforms, profiles)
        if not discovery.platform_names_address(found):
            found += discovery.operator_registries(self._list_all(S.DEPLOYMENTS, selector=discovery.OPERATOR_SELECTOR))
        self._registries = found
        return found

    def registry_origin(self, address: str | None) -> str:
        """Where the registry address came from (``address``: REGISTRY_ADDRESS), for the log."""
        return discovery.registry_origin(self._registries, address)

    def delete_kit(self, namespace: str, name: str) -> bool:
        """DELETE one IntegrationKit; False when it was already gone."""
        path = f"/apis/{S.CAMEL}/v1/namespaces/{namespace}/integrationkits/{name}"
        try:
            resp = self.http.request("DELETE", path)
        except TransportError as exc:
            raise KubernetesError(f"cannot delete IntegrationKit {namespace}/{name}: {exc}") from None
        if resp.status == 404:
            return False
        if not resp.ok:
            raise KubernetesError(f"cannot delete IntegrationKit {namespace}/{name}: {resp.status_message()}",
                                  status=resp.status)
        return True
