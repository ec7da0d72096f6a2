"""The scale table: how time, memory and requests grow from one scene size to the next.

``make bench BENCH_ARGS="--scale 4"`` (and 16, ``large``) each write
``bench/results-scale-<s>.json``; ``python -m bench.scaletable`` reads them all and prints
one row per scale and network: kitgc's wall and CPU time and peak RSS, the floor's wall
time where it was measured, requests per manifest, and each figure's growth against the
smallest scale, per unit of scene (1.00 = linear, below = better than linear). Growth is
what the scale issue asks to see; the absolute figures depend on the machine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The results files, smallest scene first; files of one scene (a variant measured later,
    ``--output results-scale-16-shard.json``) are merged into one, the first file's figures first."""
    by_scene: dict[str, dict[str, Any]] = {}
    for p in paths:
        result = json.loads(Path(p).read_text())
        key = f"{result['scene'].get('scale')}/{result['scene']['manifests']}"
        if key not in by_scene:
            by_scene[key] = result
            continue
        kept = by_scene[key]
        kept.setdefault("enforce", result.get("enforce"))
        for net, data in result["networks"].items():
            variants = kept["networks"].setdefault(net, {"variants": {}})["variants"]
            for name, figures in data["variants"].items():
                variants.setdefault(name, figures)
    return sorted(by_scene.values(), key=lambda r: r["scene"]["manifests"])


def rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scale, network) where kitgc ran, with growth against the first scale."""
    out: list[dict[str, Any]] = []
    firsts: dict[tuple[str, str], tuple[float, int]] = {}

    def growth(net: str, what: str, value: float, manifests: int) -> float:
        """``value`` over the first scene's, per unit of scene; each figure against the
        smallest scene that has it (the floor and the deleting run may start later)."""
        first, first_manifests = firsts.setdefault((net, what), (value, manifests))
        return (value / first) / (manifests / first_manifests)

    for r in results:
        scene = r["scene"]
        manifests = int(scene["manifests"])
        for net, data in r["networks"].items():
            kitgc = data["variants"].get("kitgc")
            if kitgc is None:
                continue
            # The floor with kitgc's own request mix (a HEAD per tag) when it ran, else the GET one.
            floor_name = "floor-head" if "floor-head" in data["variants"] else "floor"
            floor = data["variants"].get(floor_name)
            wall, cpu, rss = float(kitgc["wall_median"]), float(kitgc["cpu_median"]), float(kitgc["rss_mb_max"])
            floor_wall = float(floor["wall_median"]) if floor else None
            enforce = r.get("enforce") or {}
            deleting = enforce if enforce.get("network", "loopback") == net else {}
            out.append({
                "deleting_wall": deleting.get("wall"), "deleting_rss": deleting.get("rss_mb"),
                "deleted": deleting.get("manifests_deleted"), "deleting_error": deleting.get("error"),
                "scale": str(scene.get("scale", "1")), "network": net, "manifests": manifests,
                "objects": int(scene.get("kubernetes_objects", 0)), "wall": wall, "cpu": cpu, "rss": rss,
                "floor_wall": floor_wall,
                "floor_kind": ("HEAD" if floor_name == "floor-head" else "GET") if floor else None,
                "shard": data["variants"].get("kitgc-shard4"),
                "per_manifest": kitgc.get("requests_per_manifest", {}),
                "wall_growth": growth(net, "wall", wall, manifests), "cpu_growth": growth(net, "cpu", cpu, manifests),
                "rss_growth": growth(net, "rss", rss, manifests),
                "over_floor": wall / floor_wall if floor_wall else None,
                # When the floor grows faster than the scene, that part of kitgc's growth is the registry's.
                "floor_growth": growth(net, "floor", floor_wall, manifests) if floor_wall else None,
                "deleting_growth": (growth(net, "deleting_wall", float(deleting["wall"]), manifests),
                                    growth(net, "deleting_rss", float(deleting["rss_mb"]), manifests))
                if deleting.get("wall") is not None else None,
            })
    return out


# The scale issue's targets, for a scene of 100,000 manifests at 20 ms round trip.
TARGETS = {"dry_run_s": 120.0, "deleting_s": 150.0, "rss_mb": 300.0}


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _scale_name(scale: str) -> str:
    return scale if scale == "large" else f"{scale}x"


def render(results: list[dict[str, Any]]) -> str:
    lines = ["| scale | network | manifests / objects | kitgc dry run wall (s) | CPU (s) | peak RSS (MB) | "
             "floor wall (s) (HEAD or GET per tag) | deleting run wall (s) / peak RSS (MB) | "
             "one shard of 4: wall / CPU (s) | HEAD / GET per manifest | "
             "growth per unit of scene: wall / CPU / RSS | kitgc / floor | growth per unit of scene: floor wall; "
             "deleting run wall / RSS |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |"]
    all_rows = rows(results)
    for row in all_rows:
        per = row["per_manifest"]
        floor = f"{row['floor_wall']:.1f} ({row['floor_kind']})" if row["floor_wall"] is not None else "-"
        deleting = (f"{row['deleting_wall']:.1f} / {row['deleting_rss']:.0f}" if row["deleting_wall"] is not None
                    else "-")
        shard = (f"{row['shard']['wall_median']:.1f} / {row['shard']['cpu_median']:.1f}" if row["shard"] else "-")
        lines.append(
            f"| {_scale_name(row['scale'])} | {row['network']} | {row['manifests']:,} / {row['objects']:,} | "
            f"{row['wall']:.1f} | {row['cpu']:.1f} | {row['rss']:.0f} | {floor} | {deleting} | {shard} | "
            f"{per.get('head', 0):.3f} / {per.get('get', 0):.3f} | "
            f"{row['wall_growth']:.2f} / {row['cpu_growth']:.2f} / {row['rss_growth']:.2f} | "
            f"{_num(row['over_floor'])} | {_num(row['floor_growth'])}; "
            f"{' / '.join(_num(g) for g in row['deleting_growth']) if row['deleting_growth'] else '-'} |")
    lines += [""] + [f"- {line}" for line in verdicts(all_rows)]
    return "\n".join(lines).rstrip("\n- ")


def verdicts(all_rows: list[dict[str, Any]]) -> list[str]:
    """The targets against the largest scene measured at 20 ms, one line each ("met" or "missed")."""
    candidates = [r for r in all_rows if r["network"] != "loopback" and r["manifests"] >= 90_000]
    if not candidates:
        return []
    r = max(candidates, key=lambda row: row["manifests"])
    where = f"{_scale_name(r['scale'])}, {r['network']}"
    out = [_verdict(f"dry run under {TARGETS['dry_run_s']:g} s ({where})", r["wall"], TARGETS["dry_run_s"], "s"),
           _verdict(f"dry run peak RSS at most {TARGETS['rss_mb']:g} MB", r["rss"], TARGETS["rss_mb"], "MB")]
    if r.get("deleting_error"):
        out.append(f"deleting run: failed ({r['deleting_error'].splitlines()[0][:200]})")
    elif r["deleting_wall"] is not None:
        out += [_verdict(f"deleting run ({r['deleted']} deleted) under {TARGETS['deleting_s']:g} s",
                         r["deleting_wall"], TARGETS["deleting_s"], "s"),
                _verdict(f"deleting run peak RSS at most {TARGETS['rss_mb']:g} MB", r["deleting_rss"],
                         TARGETS["rss_mb"], "MB")]
    return out


def _verdict(what: str, value: float, limit: float, unit: str) -> str:
    return f"{what}: {value:.1f} {unit}, {'met' if value <= limit else 'missed'}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted(HERE.glob("results-scale-*.json"))
    if not paths:
        print("no bench/results-scale-*.json yet: run `make bench BENCH_ARGS=\"--scale 4\"` first", file=sys.stderr)
        return 1
    print(render(load(paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
