"""The bench's scale table: growth per unit of scene, from the results files of each scale."""

from __future__ import annotations

import json
from pathlib import Path

from bench.scaletable import load, main, render, rows


def _result(scale: str, manifests: int, wall: float, cpu: float, rss: float, floor: float | None = None) -> dict:
    variants = {"kitgc": {"wall_median": wall, "cpu_median": cpu, "rss_mb_max": rss,
                          "requests_per_manifest": {"head": 1.0, "get": 500 / manifests}}}
    if floor is not None:
        variants["floor"] = {"wall_median": floor, "cpu_median": floor, "rss_mb_max": 100}
    return {"scene": {"scale": scale, "manifests": manifests, "kubernetes_objects": manifests * 5},
            "networks": {"loopback": {"variants": variants}}}


def test_growth_is_per_unit_of_scene_against_the_smallest_one(tmp_path: Path) -> None:
    files = []
    for r in (_result("4", 24_000, 80.0, 40.0, 800.0), _result("1", 6_000, 20.0, 10.0, 100.0, floor=30.0)):
        files.append(tmp_path / f"results-scale-{r['scene']['scale']}.json")
        files[-1].write_text(json.dumps(r))
    got = rows(load(files))
    assert [r["scale"] for r in got] == ["1", "4"]  # smallest first, whatever the order given
    assert (got[1]["wall_growth"], got[1]["cpu_growth"]) == (1.0, 1.0)  # 4x the time for 4x the scene: linear
    assert got[1]["rss_growth"] == 2.0  # 8x the memory for 4x the scene: worse than linear, and shown
    table = render(load(files))
    assert "| 1x | loopback | 6,000 / 30,000 | 20.0 | 10.0 | 100 | 30.0 |" in table
    assert "| 4x | loopback | 24,000 / 120,000 | 80.0 | 40.0 | 800 | - |" in table


def test_no_results_yet_says_how_to_make_them(capsys, tmp_path: Path, monkeypatch) -> None:
    import bench.scaletable as module

    monkeypatch.setattr(module, "HERE", tmp_path)
    assert main([]) == 1
    assert "--scale 4" in capsys.readouterr().err
