"""The bench's scale table: growth per unit of scene, from the results files of each scale."""

from __future__ import annotations

import json
from pathlib import Path

from bench.scaletable import load, main, render, rows


def _result(scale: str, manifests: int, wall: float, cpu: float, rss: float, floor: float | None = None,
            floor_head: float | None = None) -> dict:
    variants = {"kitgc": {"wall_median": wall, "cpu_median": cpu, "rss_mb_max": rss,
                          "requests_per_manifest": {"head": 1.0, "get": 500 / manifests}}}
    for name, value in (("floor", floor), ("floor-head", floor_head)):
        if value is not None:
            variants[name] = {"wall_median": value, "cpu_median": value, "rss_mb_max": 100}
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
    assert "| 1x | loopback | 6,000 / 30,000 | 20.0 | 10.0 | 100 | 30.0 (GET) | - | - |" in table
    assert "| 4x | loopback | 24,000 / 120,000 | 80.0 | 40.0 | 800 | - | - | - |" in table
    assert "met" not in table  # no scene of the targets' size at 20 ms: no verdicts


def test_the_targets_are_judged_on_the_largest_scene_at_20_ms(tmp_path: Path) -> None:
    large = _result("large", 100_000, 110.0, 90.0, 320.0, floor=100.0)
    large["networks"]["latency-20ms"] = large["networks"].pop("loopback")
    large["enforce"] = {"network": "latency-20ms", "wall": 151.0, "rss_mb": 250.0, "manifests_deleted": 500}
    path = tmp_path / "results-scale-large.json"
    path.write_text(json.dumps(large))
    table = render(load([path]))
    assert "| large | latency-20ms | 100,000 / 500,000 | 110.0 | 90.0 | 320 | 100.0 (GET) | 151.0 / 250 | - |" in table
    assert "- dry run under 120 s (large, latency-20ms): 110.0 s, met" in table
    assert "- dry run peak RSS at most 300 MB: 320.0 MB, missed" in table
    assert "- deleting run (500 deleted) under 150 s: 151.0 s, missed" in table
    assert "- deleting run peak RSS at most 300 MB: 250.0 MB, met" in table


def test_no_results_yet_says_how_to_make_them(capsys, tmp_path: Path, monkeypatch) -> None:
    import bench.scaletable as module

    monkeypatch.setattr(module, "HERE", tmp_path)
    assert main([]) == 1
    assert "--scale 4" in capsys.readouterr().err


def test_the_floor_with_kitgcs_own_request_mix_is_preferred_when_it_ran(tmp_path: Path) -> None:
    path = tmp_path / "results-scale-1.json"
    path.write_text(json.dumps(_result("1", 6_000, 20.0, 10.0, 100.0, floor=30.0, floor_head=25.0)))
    table = render(load([path]))
    assert "| 20.0 | 10.0 | 100 | 25.0 (HEAD) |" in table  # kitgc sends a HEAD per tag: that floor, not GET's


def test_a_variant_measured_later_joins_its_scenes_row(tmp_path: Path) -> None:
    main_run = _result("16", 96_000, 400.0, 200.0, 250.0, floor_head=420.0)
    later = _result("16", 96_000, 999.0, 999.0, 999.0)  # its own kitgc figures must not replace the first's
    later["networks"]["loopback"]["variants"]["kitgc-shard4"] = {"wall_median": 150.0, "cpu_median": 80.0,
                                                                "rss_mb_max": 200}
    files = [tmp_path / "results-scale-16.json", tmp_path / "results-scale-16-shard.json"]
    for f, r in zip(files, (main_run, later), strict=True):
        f.write_text(json.dumps(r))
    table = render(load(files))
    assert table.count("| 16x |") == 1
    assert "| 400.0 | 200.0 | 250 | 420.0 (HEAD) | - | 150.0 / 80.0 |" in table


def test_kitgc_is_shown_against_the_floor_and_the_floor_and_deleting_run_grow_per_unit_of_scene(
        tmp_path: Path) -> None:
    """A registry that slows as it grows makes kitgc grow faster than the scene; the floor's own
    growth beside it says how much of that is the registry's, and the deleting run grows too."""
    small = _result("1", 6_000, 20.0, 10.0, 100.0, floor_head=25.0)
    big = _result("4", 24_000, 120.0, 40.0, 150.0, floor_head=150.0)
    for r, (wall, rss) in ((small, (30.0, 120.0)), (big, (240.0, 240.0))):
        r["enforce"] = {"network": "loopback", "wall": wall, "rss_mb": rss, "manifests_deleted": 500}
    files = [tmp_path / "results-scale-1.json", tmp_path / "results-scale-4.json"]
    for f, r in zip(files, (small, big), strict=True):
        f.write_text(json.dumps(r))
    got = rows(load(files))
    assert got[1]["wall_growth"] == 1.5 and got[1]["floor_growth"] == 1.5  # both 6x for a 4x scene
    assert (got[0]["over_floor"], got[1]["over_floor"]) == (0.8, 0.8)
    assert got[1]["deleting_growth"] == (2.0, 0.5)
    table = render(load(files))
    assert "| 1.50 / 1.00 / 0.38 | 0.80 | 1.50; 2.00 / 0.50 |" in table
    assert "| 1.00 / 1.00 / 1.00 | 0.80 | 1.00; 1.00 / 1.00 |" in table
