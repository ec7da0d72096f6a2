"""``make bench``: how fast and how lean a kitgc pass is at the scale of real installations.

The scene is a real Distribution registry with thousands of kit repositories (seeded once
through the HTTP API and cached under ``bench/.scene/``) and an emulated Kubernetes API with
tens of thousands of objects. Three things run side by side, interleaved round by round so
that noise on a shared machine hits them alike:

(a) ``python -m kitgc`` dry run at the default ``CONCURRENCY``;
(b) the floor (:mod:`bench.floor`): exactly the same registry requests at the same
    concurrency with nothing done with the answers, plus a raw read of the same lists;
(c) ``python -m kitgc`` at ``CONCURRENCY=1``, what a sequential script does;

on loopback and through :mod:`bench.latency_proxy` (20 ms per registry request). Results go
to stdout and ``bench/results.json``; ``README.md`` quotes them.
"""
