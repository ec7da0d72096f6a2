"""The profile tool's py-spy summary: samples summed per leaf function and per kitgc function."""

from __future__ import annotations

from bench.profile import summarise_samples

RAW = "\n".join([
    'process 7:"python -m kitgc";thread (0x1);<module> (/app/gc/kitgc/__main__.py:3);'
    "scan (/app/gc/kitgc/inventory.py:40);send (/v/site-packages/httpx/_client.py:900) 6",
    'process 7:"python -m kitgc";thread (0x1);<module> (/app/gc/kitgc/__main__.py:3);'
    "plan (/app/gc/kitgc/plan/planner.py:60) 3",
    'process 7:"python -m kitgc";thread (0x2);wait (/usr/lib/python3.11/threading.py:320) 1',
    "garbage line without a count",
])


def test_samples_are_shared_out_per_leaf_and_per_kitgc_function_on_the_stack() -> None:
    got = summarise_samples(RAW)
    assert got["samples"] == 10
    own = {row["function"]: row["share"] for row in got["self"]}
    assert own == {"httpx/_client.py:send": 0.6, "kitgc/plan/planner.py:plan": 0.3, "threading.py:wait": 0.1}
    inclusive = {row["function"]: row["share"] for row in got["inclusive_kitgc"]}
    assert inclusive["kitgc/__main__.py:<module>"] == 0.9
    assert inclusive["kitgc/inventory.py:scan"] == 0.6
    assert "httpx/_client.py:send" not in inclusive  # only kitgc's own functions, inclusive
