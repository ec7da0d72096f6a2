"""Drawing for ``docs/render_dashboard.py``: the dashboard's panels as a PNG, with matplotlib.

Apart from the script that runs the collector and Prometheus so that each stays short: this
half knows Grafana's panel JSON (grid positions, stat thresholds, units, legends) and asks
Prometheus (:class:`Prom`) the panels' own PromQL; it knows nothing of how the runs were made.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from render_dashboard import Prom, Ran

BACKGROUND, PANEL, BORDER, TEXT, DIM = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e"
NAMED = {"green": "#56A64B", "orange": "#FF780A", "red": "#E02F44", "blue": "#3274D9", "yellow": "#F2CC0C",
         "purple": "#A352CC", "text": "#3d4147"}
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF9830", "#F2495C", "#5794F2", "#B877D9", "#705DA0"]
UNIT_H = 0.42  # inches per grid row
WIDTH = 20.0


def color(name: str | None) -> str:
    return NAMED.get(name or "", name or NAMED["text"])


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        for size, name in ((86400, "day"), (3600, "hour"), (60, "min")):
            if abs(value) >= size:
                v = value / size
                return f"{v:.1f} {name}{'s' if name != 'min' and v >= 2 else ''}"
        return f"{value:.3g} s" if value < 10 else f"{value:.0f} s"
    if unit == "bytes":
        for size, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def nice(x: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``x``."""
    power = 10 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= x)


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def with_instance(expr: str, dashboard: dict[str, Any]) -> str:
    """``$instance`` as the dashboard's "All" option gives it."""
    var = next(v for v in dashboard["templating"]["list"] if v["name"] == "instance")
    return expr.replace("$instance", var.get("allValue") or ".+")


def stat_style(panel: dict[str, Any], name: str, value: float) -> tuple[str, str]:
    """(text, background colour) of one stat value, following the panel's own config."""
    defaults = panel["fieldConfig"]["defaults"]
    for mapping in defaults.get("mappings", []):
        hit = mapping.get("options", {}).get(str(int(value)) if float(value).is_integer() else str(value))
        if mapping.get("type") == "value" and hit:
            return hit["text"], color(hit.get("color"))
    background = None
    for steps in [defaults.get("thresholds", {}).get("steps", [])]:
        for step in steps:
            if step["value"] is None or value >= step["value"]:
                background = step["color"]
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"].get("options") == name:
            for prop in override["properties"]:
                if prop["id"] == "color":
                    background = prop["value"].get("fixedColor", background)
    text = name if panel["options"].get("textMode") == "name" else fmt(value, defaults.get("unit", "none"))
    if panel["options"].get("colorMode") == "none":
        return text, PANEL
    return text, color(background)


def draw(dashboard: dict[str, Any], prom: Prom, runs: list[Ran], start: float, end: float, out: Path, *,
         cluster: str, queries_from: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, MultipleLocator

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 11, "text.color": TEXT,
                         "axes.labelcolor": TEXT, "xtick.color": DIM, "ytick.color": DIM})
    panels = dashboard["panels"]
    # One extra full-width strip under the stats: the "Last outcome" query over time.
    strip_y, strip_h = next(p["gridPos"]["y"] for p in panels if p["type"] == "row" and p["gridPos"]["y"] > 0), 3
    header_h = 2.2
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) + strip_h
    height = (rows + header_h) * UNIT_H + 0.9
    fig = plt.figure(figsize=(WIDTH, height), facecolor=BACKGROUND)

    def rect(x: float, y: float, w: float, h: float, pad: float = 0.06) -> list[float]:
        """Figure coordinates of a grid box (y from the top), with a small gap around it."""
        px, py = pad * UNIT_H / WIDTH * 3, pad / height
        top = 1 - (header_h + y) * UNIT_H / height
        return [x / 24 + px, top - h * UNIT_H / height + py, w / 24 - 2 * px, h * UNIT_H / height - 2 * py]

    def box(x: float, y: float, w: float, h: float, title: str) -> Any:
        frame = fig.add_axes(rect(x, y, w, h))
        frame.set_xticks([])
        frame.set_yticks([])
        frame.set_facecolor(PANEL)
        for spine in frame.spines.values():
            spine.set_color(BORDER)
        frame.text(0.012 * 24 / w, 1 - 0.45 / h, title, transform=frame.transAxes, fontsize=12.5,
                   fontweight="bold", va="center", color=TEXT)
        return frame

    def shifted(p: dict[str, Any]) -> dict[str, float]:
        g = dict(p["gridPos"])
        if g["y"] >= strip_y:
            g["y"] += strip_h
        return g

    stamp = datetime.fromtimestamp(end).strftime("%Y-%m-%d %H:%M:%S")
    fig.text(0.008, 1 - 0.55 * UNIT_H / height, dashboard["title"], fontsize=20, fontweight="bold", va="center")
    fig.text(0.008, 1 - 1.45 * UNIT_H / height,
             f"Cluster: All ({cluster})     {len(runs)} real `python -m kitgc` runs,"
             f" {datetime.fromtimestamp(start):%H:%M:%S} to {datetime.fromtimestamp(end):%H:%M:%S}"
             "     Prometheus query_range, step 1s, scraping the Pushgateway every 1s (honor_labels)"
             f"     queries: {queries_from}", fontsize=11, color=DIM,
             va="center")
    fig.text(0.992, 1 - 0.55 * UNIT_H / height, f"rendered {stamp} by docs/render_dashboard.py", fontsize=10,
             color=DIM, va="center", ha="right")

    times = [datetime.fromtimestamp(r.ended) for r in runs]
    t0, t1 = datetime.fromtimestamp(start), datetime.fromtimestamp(end)

    def run_lines(ax: Any, numbers: bool = False) -> None:
        for r, t in zip(runs, times, strict=True):
            ax.axvline(t, color=DIM, lw=0.6, ls=":", zorder=0)
            if numbers:
                ax.text(t, 1.0, f" {r.number}", transform=ax.get_xaxis_transform(), fontsize=9.5, color=DIM,
                        va="bottom", ha="center")

    first_tick = (int(start) // 20 + 1) * 20
    ticks = [datetime.fromtimestamp(t) for t in range(first_tick, int(end), 20) if start + 4 < t < end - 4]

    def time_axis(ax: Any) -> None:
        ax.set_xlim(t0, t1)
        ax.xaxis.set_major_locator(FixedLocator([mdates.date2num(t) for t in ticks]))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.set_facecolor(PANEL)
        for side, spine in ax.spines.items():
            spine.set_visible(side == "bottom")
            spine.set_color(BORDER)
        ax.grid(True, color=BORDER, lw=0.6)

    for p in panels:
        g = shifted(p)
        if p["type"] == "row":
            fig.text(g["x"] / 24 + 0.004, 1 - (header_h + g["y"] + 0.5) * UNIT_H / height, "▾ " + p["title"],
                     fontsize=14, fontweight="bold", va="center")
            continue
        frame = box(g["x"], g["y"], g["w"], g["h"], p["title"])
        target = p["targets"][0]
        if p["type"] == "stat":
            result = prom.instant(with_instance(target["expr"], dashboard), end)
            if not result:
                frame.text(0.5, 0.4, "No data", ha="center", va="center", fontsize=18, color=DIM,
                           transform=frame.transAxes)
                continue
            labels, value = result[0]["metric"], float(result[0]["value"][1])
            text, background = stat_style(p, legend(target.get("legendFormat", ""), labels), value)
            frame.add_patch(FancyBboxPatch((0.03, 0.06), 0.94, 0.62, boxstyle="round,pad=0,rounding_size=0.02",
                                           transform=frame.transAxes, facecolor=background, edgecolor="none"))
            size = 30 if len(text) <= 8 else max(14, 30 - 1.7 * (len(text) - 8))
            frame.text(0.5, 0.37, text, ha="center", va="center", fontsize=size, fontweight="bold",
                       color="#ffffff", transform=frame.transAxes)
            continue

        unit = p["fieldConfig"]["defaults"].get("unit", "short")
        ax = fig.add_axes(rect(g["x"] + 0.35, g["y"] + 1.25, g["w"] - 0.6, g["h"] - 2.65, pad=0.02))
        time_axis(ax)
        run_lines(ax, numbers=p["title"] == "Manifests")
        handles, top = [], 0.0
        for i, t in enumerate(p["targets"]):
            for series in prom.range(with_instance(t["expr"], dashboard), start, end):
                xs = [datetime.fromtimestamp(float(v[0])) for v in series["values"]]
                ys = [float(v[1]) for v in series["values"]]
                top = max(top, *ys)
                c = PALETTE[i % len(PALETTE)]
                (line,) = ax.plot(xs, ys, drawstyle="steps-post", lw=2, color=c,
                                  label=legend(t.get("legendFormat", ""), series["metric"]))
                ax.fill_between(xs, ys, step="post", color=c, alpha=0.10)
                handles.append(line)
        ax.set_ylim(0, max(1.0, top * 1.15))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=unit in ("short", "none")))
        if unit == "bytes" and top > 0:
            scale = 2**30 if top >= 2**30 else 2**20 if top >= 2**20 else 2**10
            ax.yaxis.set_major_locator(MultipleLocator(nice(top / 4 / scale) * scale))
        if unit in ("bytes", "s"):
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos, unit=unit: fmt(v, unit)))
        if handles:
            frame.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.005, 0.0), ncol=len(handles),
                         frameon=False, fontsize=10.5, handlelength=1.4, columnspacing=1.2, labelcolor=TEXT)
        else:
            ax.text(0.5, 0.5, "No data", ha="center", va="center", fontsize=16, color=DIM, transform=ax.transAxes)

    # The strip: the Last outcome panel's query over time, one band per outcome.
    outcome_panel = next(p for p in panels if p["title"] == "Last outcome")
    frame = box(0, strip_y, 24, strip_h, "Last outcome over time (the Last outcome query, query_range)")
    ax = fig.add_axes(rect(0.35, strip_y + 0.95, 23.3, strip_h - 1.75, pad=0.02))
    time_axis(ax)
    ax.grid(False)
    ax.set_yticks([])
    colours = {}
    for override in outcome_panel["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "color":
                colours[override["matcher"]["options"]] = color(prop["value"].get("fixedColor"))
    expr = with_instance(outcome_panel["targets"][0]["expr"], dashboard)
    samples = sorted((float(ts), series["metric"].get("outcome", "?"))
                     for series in prom.range(expr, start, end) for ts, _ in series["values"])
    segments: list[list[Any]] = []  # [outcome, from, to]
    for ts, outcome in samples:
        if segments and segments[-1][0] == outcome and ts - segments[-1][2] <= 1.5:
            segments[-1][2] = ts
        else:
            segments.append([outcome, ts, ts])
    for outcome, a, b in segments:
        b = min(b + 1, end)
        ax.axvspan(datetime.fromtimestamp(a), datetime.fromtimestamp(b), color=colours.get(outcome, DIM), lw=0)
        if outcome != "success":
            ax.text(datetime.fromtimestamp((a + b) / 2), 0.5, outcome.replace("_", " "), fontsize=10, color="#ffffff",
                    va="center", ha="center", fontweight="bold")
    for r, t in zip(runs, times, strict=True):
        ax.axvline(t, color=BACKGROUND, lw=1.2)
        ax.text(t, -0.06, str(r.number), fontsize=9.5, color=DIM, va="top", ha="center",
                transform=ax.get_xaxis_transform())
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", labelbottom=False)
    keys = [FancyBboxPatch((0, 0), 1, 1, facecolor=c, edgecolor="none") for c in colours.values()]
    frame.legend(keys, list(colours), loc="upper right", ncol=len(keys), frameon=False, fontsize=10.5,
                 labelcolor=TEXT, bbox_to_anchor=(0.995, 1.02), handlelength=1.0)

    # What each run was, so the numbers on the plots can be read.
    notes = [f"{r.number} {r.label} (exit {r.code})" for r in runs]
    half = (len(notes) + 1) // 2
    for line, chunk in enumerate((notes[:half], notes[half:])):
        fig.text(0.008, (0.62 - 0.32 * line) * 0.9 / height, ("Runs:  " if line == 0 else "           ")
                 + "     ".join(chunk), fontsize=10.5, color=DIM, va="center")
    fig.savefig(out, dpi=90, facecolor=BACKGROUND)
    plt.close(fig)
