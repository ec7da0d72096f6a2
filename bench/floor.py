"""The floor: the least any collector has to do, as a minimal asyncio + httpx script.

It makes the registry requests of a GET-per-tag scan, with ``kitgc``'s concurrency and
shape (the catalog following ``Link``; per repository, at most ``concurrency`` in flight:
its tag list, then one GET per tag with the same ``Accept``; index children level by
level), and does nothing with the answers beyond what is needed to make the next request.
``kitgc`` now scans HEAD first (a HEAD per tag, then a GET only for indexes and for the
manifests its plan would delete), so its requests sit between ``--mode head`` and the
default; the benchmark reports both, by kind, per manifest. Then it reads the same
Kubernetes lists, raw, page by page (``json.loads`` only to follow ``continue``), four
sources at a time like ``kitgc``'s reader. Whatever ``kitgc`` spends beyond this is the
price of its own work: parsing, checking, extracting, planning.

``--mode head`` sends HEAD instead of GET for tags: the other design, measured on the
same scene so that the choice between them rests on numbers.

    python -m bench.floor --registry 127.0.0.1:5000 --organization camel-k \
        --kubeconfig kubeconfig --concurrency 16 [--mode get|head]

Prints one JSON object: seconds per phase, requests and objects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

import httpx

from kitgc.cluster.sources import SOURCES
from kitgc.registry.mediatypes import INDEX_TYPES, MANIFEST_ACCEPT

_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)


class _Connections:
    """``concurrency`` clients of one connection each, handed out by a queue, as kitgc's transport
    does: httpcore's pool checks every pooled connection on each request, which at 16 costs a
    pooled client about twice the CPU per request; a floor that paid it would flatter kitgc."""

    def __init__(self, concurrency: int) -> None:
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._all = [httpx.AsyncClient(timeout=60.0, limits=one) for _ in range(concurrency)]
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for c in self._all:
            self._idle.put_nowait(c)

    async def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        c = await self._idle.get()  # also the bound on requests in flight
        try:
            return await c.request(method, url, headers=headers)
        finally:
            self._idle.put_nowait(c)

    async def aclose(self) -> None:
        for c in self._all:
            await c.aclose()


async def _paged(c: _Connections, url: str, field: str) -> list[str]:
    out: list[str] = []
    next_url: str | None = url
    while next_url:
        r = await c.request("GET", next_url)
        out += r.json().get(field) or []
        m = _LINK_NEXT.search(r.headers.get("Link", ""))
        next_url = str(r.url.join(m.group(1))) if m else None
    return out


async def registry_pass(address: str, organization: str, concurrency: int, mode: str) -> dict[str, Any]:
    base = f"http://{address}"
    repos_sem = asyncio.Semaphore(concurrency)  # repositories in flight, as kitgc's scan
    accept = {"Accept": MANIFEST_ACCEPT}
    prefix = f"{organization}/camel-k-kit-"

    c = _Connections(concurrency)
    try:

        async def manifest(repo: str, ref: str, method: str) -> httpx.Response:
            return await c.request(method, f"{base}/v2/{repo}/manifests/{ref}", headers=accept)

        async def repository(repo: str) -> None:
            async with repos_sem:
                tags = sorted(set(await _paged(c, f"{base}/v2/{repo}/tags/list", "tags")))
                method = "HEAD" if mode == "head" else "GET"
                answers = await asyncio.gather(*(manifest(repo, t, method) for t in tags))
                seen = {r.headers.get("Docker-Content-Digest") for r in answers}
                pending = answers
                while pending:  # index children, level by level (none in the scene, kept for exactness)
                    children = []
                    for r in pending:
                        if r.headers.get("Content-Type", "").split(";")[0] in INDEX_TYPES:
                            body = r.content if method == "GET" else (await manifest(repo, r.headers[
                                "Docker-Content-Digest"], "GET")).content
                            children += [d["digest"] for d in json.loads(body).get("manifests") or []]
                    todo = sorted(set(children) - seen)
                    seen |= set(todo)
                    pending = list(await asyncio.gather(*(manifest(repo, d, "GET") for d in todo)))

        names = await _paged(c, f"{base}/v2/_catalog?n=1000", "repositories")
        ours = sorted(n for n in names if n.startswith(prefix) and "/" not in n[len(prefix):])
        await asyncio.gather(*(repository(r) for r in ours))
    finally:
        await c.aclose()
    return {"repositories": len(ours)}


async def kube_pass(kubeconfig: str, page_size: int, workers: int = 4) -> dict[str, Any]:
    with open(kubeconfig) as fh:
        cfg = json.load(fh)
    server = cfg["clusters"][0]["cluster"]["server"]
    token = cfg["users"][0]["user"]["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    objects = 0
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=60.0) as c:
        await c.get("/api/v1/namespaces/default/configmaps/camel-k-kit-gc-state")  # the state
        todo = []
        for s in SOURCES:  # optional APIs: asked of discovery first, as kitgc does
            gv = f"/apis/{s.group}/{s.version}" if s.group else f"/api/{s.version}"
            if s.optional:
                r = await c.get(gv)
                if r.status_code == 404 or s.plural not in {x["name"] for x in r.json().get("resources", [])}:
                    continue
            todo.append(s.path)
        sem = asyncio.Semaphore(workers)

        async def read(path: str) -> int:
            n, token_ = 0, None
            async with sem:
                while True:
                    params: dict[str, Any] = {"limit": page_size}
                    if token_:
                        params["continue"] = token_
                    page = json.loads((await c.get(path, params=params)).content)
                    n += len(page.get("items") or ())
                    token_ = (page.get("metadata") or {}).get("continue")
                    if not token_:
                        return n

        objects = sum(await asyncio.gather(*(read(p) for p in todo)))
    return {"objects": objects}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    reg = {} if args.mode == "none" else await registry_pass(args.registry, args.organization, args.concurrency,
                                                              args.mode)
    t1 = time.perf_counter()
    kube = await kube_pass(args.kubeconfig, args.page_size)
    t2 = time.perf_counter()
    return {**reg, **kube, "registry_seconds": round(t1 - t0, 3), "kube_seconds": round(t2 - t1, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--registry", required=True)
    parser.add_argument("--organization", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--mode", choices=("get", "head", "none"), default="get",
                        help="none: the cluster only (a warm-up of the emulated API's pages)")
    print(json.dumps(asyncio.run(_main(parser.parse_args()))))


if __name__ == "__main__":
    main()
