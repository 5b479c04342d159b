"""The report's figures: matplotlib drawings returned as data URIs.

Each function draws on its own :class:`matplotlib.figure.Figure` (never
pyplot), so importing or calling it never switches a notebook's backend or
changes rcParams outside a ``rc_context``. Rendering only: the figures show
what the run computed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from siteplanner._display import COMPETITOR_COLOUR, OWN_COLOUR, SITE_COLOUR, signed

__all__ = ["MINI_MAP_RADIUS_M", "Scene", "breakdown_chart", "mini_map", "overview_map",
           "zones_drawing"]

#: How far around a site its card's mini-map reaches, in metres.
MINI_MAP_RADIUS_M = 400.0


@dataclass
class Scene:
    """The layers a map drawing shows, all in one projected CRS (metres)."""

    selected: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    own_branches: gpd.GeoDataFrame
    competitors: gpd.GeoDataFrame
    transit: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None = None
    area: gpd.GeoDataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None


def _data_uri(fig: Any, fmt: str) -> str:
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    # A fixed layout instead of bbox_inches="tight", which draws every figure twice.
    fig.savefig(buf, format=fmt, dpi=110, metadata=meta)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _figure(w: float, h: float) -> Any:
    # A bare Figure draws through its own canvas: no pyplot, no backend switch, no global state.
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def tornado_chart(doc: Mapping[str, Any]) -> str:
    """Total NPV of the chosen sites when each input moves by ±change (``run.json`` npv_sensitivity)."""
    import matplotlib

    rows = sorted(doc["inputs"], key=lambda r: abs(float(r["high"]) - float(r["low"])))
    base, cur = float(doc["base"]), str(doc.get("currency", ""))
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "siteplanner"}):
        fig = _figure(6.0, 0.5 * len(rows) + 1.0)
        ax = fig.add_axes((0.3, 0.3, 0.62, 0.55))
        for y, r in enumerate(rows):
            for end, colour in ((float(r["low"]), "#c92a2a"), (float(r["high"]), "#2b8a3e")):
                ax.barh(y, end - base, left=base, color=colour, height=0.55)
        ax.axvline(base, color="#333", lw=0.8)
        ax.set_yticks(range(len(rows)), [str(r["input"]).replace("_", " ") for r in rows])
        ax.set_xlabel(f"total NPV ({cur}); red: input -{float(doc['change']):.0%}, "
                      f"green: +{float(doc['change']):.0%}")
        ax.set_title(f"base {base:,.0f} {cur}", fontsize=9, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return _data_uri(fig, "svg")


def breakdown_chart(row: Mapping[str, Any], names: Sequence[str]) -> str:
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "siteplanner"}):
        height = 0.38 * len(names) + 0.7
        fig = _figure(4.4, height)
        ax = fig.add_axes((0.3, 0.35 / height, 0.66, 1 - 0.75 / height))
        vals = np.array([float(row[f"{n}_contribution"]) for n in names])
        y = np.arange(len(names))[::-1]
        ax.barh(y, vals, color=np.where(vals >= 0, "#2b8a3e", "#c92a2a"), height=0.6)
        ax.axvline(0, color="#333", lw=0.8)
        ax.set_yticks(y, [n.replace("_", " ") for n in names])
        span = max(0.05, float(np.abs(vals).max()) * 1.35)
        ax.set_xlim(-span if (vals < 0).any() else -span * 0.08, span)
        for yi, v in zip(y, vals, strict=True):
            ax.text(v + (span * 0.02 if v >= 0 else -span * 0.02), yi, signed(v), va="center",
                    ha="left" if v >= 0 else "right", fontsize=8)
        ax.set_title(f"score {float(row['score']):.3f} = sum of the parts", fontsize=9, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return _data_uri(fig, "svg")


def _draw_points(ax: Any, gdf: gpd.GeoDataFrame | None, box: shapely.Geometry, **kw: Any) -> None:
    if gdf is None or not len(gdf):
        return
    g = gdf[gdf.geometry.intersects(box)]
    if len(g):
        pts = g.geometry.representative_point()
        ax.scatter(pts.x, pts.y, **kw)


def mini_map(data: Scene, row: Mapping[str, Any], geom: shapely.Geometry,
              radius: float = MINI_MAP_RADIUS_M) -> str:
    from matplotlib.collections import LineCollection

    fig = _figure(4.2, 4.2)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    x, y = geom.x, geom.y
    box = shapely.box(x - radius, y - radius, x + radius, y + radius)
    sid = str(row["site_id"])
    catch = data.catchments
    if catch is not None and len(catch) and "site_id" in catch:
        mine = catch[catch["site_id"].astype(str) == sid]
        if "minutes" in mine:
            mine = mine.sort_values("minutes", ascending=False)
        for poly in mine.geometry:
            box = box.union(shapely.envelope(poly).buffer(30))
            for part in shapely.get_parts(poly):
                if isinstance(part, shapely.Polygon):
                    ax.fill(*part.exterior.xy, color="#7950f2", alpha=0.16, ec="#5f3dc4", lw=1)
    # A square view around everything drawn, so the square figure has no blank band.
    bw, bs, be, bn = box.bounds
    half = max(be - bw, bn - bs) / 2
    cx, cy = (bw + be) / 2, (bs + bn) / 2
    box = shapely.box(cx - half, cy - half, cx + half, cy + half)
    if data.streets is not None and len(data.streets):
        idx = data.streets.sindex.query(box, predicate="intersects")
        segs = [np.asarray(ls.coords)[:, :2] for ls in
                shapely.get_parts(data.streets.geometry.values[idx]) if not ls.is_empty]
        ax.add_collection(LineCollection(segs, colors="#9a9a9a", linewidths=0.7, zorder=1))
    _draw_points(ax, data.transit, box, s=10, c="#1971c2", zorder=3)
    _draw_points(ax, data.competitors, box, s=36, c=COMPETITOR_COLOUR, edgecolors="white", zorder=4)
    _draw_points(ax, data.own_branches, box, s=42, c=OWN_COLOUR, edgecolors="white", zorder=4)
    others = data.selected[data.selected["site_id"].astype(str) != sid]
    _draw_points(ax, others, box, s=70, c=SITE_COLOUR, alpha=0.55, edgecolors="white", zorder=5)
    ax.scatter([x], [y], s=320, c=SITE_COLOUR, edgecolors="white", linewidths=1.5, zorder=6)
    ax.text(x, y, str(int(row["rank"])), ha="center", va="center", color="white",
            fontweight="bold", fontsize=9, zorder=7)
    w, s, e, n = box.bounds
    ax.set_xlim(w, e)
    ax.set_ylim(s, n)
    ax.set_aspect("equal")
    ax.set_axis_off()
    bar = 100.0 if (e - w) < 1500 else 500.0
    ax.plot([w + 0.05 * (e - w), w + 0.05 * (e - w) + bar], [s + 0.05 * (n - s)] * 2, color="#222",
            lw=2.5, solid_capstyle="butt", zorder=8)
    ax.text(w + 0.05 * (e - w), s + 0.075 * (n - s), f"{bar:.0f} m", fontsize=7, zorder=8)
    ax.text(e - 0.02 * (e - w), s + 0.02 * (n - s), "© OpenStreetMap contributors", fontsize=6,
            ha="right", va="bottom", color="#444", zorder=8)
    return _data_uri(fig, "png")


def overview_map(data: Scene) -> str:
    from matplotlib.collections import LineCollection

    w, s, e, n = (data.area if data.area is not None else data.candidates).total_bounds
    tall = (n - s) / max(e - w, 1.0)
    # Size the figure to the study area, so a tall city does not float in white space.
    width = float(np.clip(7.2 / max(tall, 0.4), 3.6, 7.6))
    fig = _figure(width, width * 0.86 * tall)
    ax = fig.add_axes((0.0, 0.0, 0.86, 1.0))
    if data.streets is not None and len(data.streets):
        segs = [np.asarray(ls.coords)[:, :2] for ls in shapely.get_parts(data.streets.geometry.values)]
        ax.add_collection(LineCollection(segs, colors="#b0b0b0", linewidths=0.5, zorder=1))
    cells = data.candidates.get("cell")
    if cells is not None:
        from matplotlib.collections import PolyCollection

        rings = [np.asarray(p.exterior.coords)[:, :2] for p in cells.values]
        polys = PolyCollection(rings, array=data.candidates["score"].to_numpy(dtype=float),
                               cmap="YlGnBu", alpha=0.6, linewidths=0, zorder=2)
        ax.add_collection(polys)
        fig.colorbar(polys, cax=fig.add_axes((0.88, 0.25, 0.025, 0.5)), label="candidate score")
    if data.area is not None:
        for ring in shapely.get_parts(data.area.boundary.values):
            xy = np.asarray(ring.coords)
            ax.plot(xy[:, 0], xy[:, 1], color="#444", lw=1, linestyle="--", zorder=3)
    for gdf, colour, label in ((data.competitors, COMPETITOR_COLOUR, "competitor"),
                               (data.own_branches, OWN_COLOUR, "own branch")):
        if len(gdf):
            pts = gdf.geometry.representative_point()
            ax.scatter(pts.x, pts.y, s=26, c=colour, edgecolors="white", zorder=4, label=label)
    sel = data.selected
    ax.scatter(sel.geometry.x, sel.geometry.y, s=190, c=SITE_COLOUR, edgecolors="white", zorder=5,
               label="new site (rank)")
    for gx, gy, r in zip(sel.geometry.x, sel.geometry.y, sel["rank"], strict=True):
        ax.text(gx, gy, str(int(r)), ha="center", va="center", color="white", fontsize=7,
                fontweight="bold", zorder=6)
    pad = 0.03 * max(e - w, n - s)
    ax.set_xlim(w - pad, e + pad)
    ax.set_ylim(s - pad, n + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(loc="lower left", fontsize=7, framealpha=0.9)
    ax.text(0.99, 0.01, "© OpenStreetMap contributors", transform=ax.transAxes, fontsize=6,
            ha="right", va="bottom", color="#444")
    return _data_uri(fig, "png")


def zones_drawing(zones: gpd.GeoDataFrame) -> str:
    from matplotlib import colormaps

    label_col = next((c for c in ("name", "zone", "kind", "label", "use") if c in zones), None)
    fig = _figure(4.4, 3.6)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    palette = colormaps["Pastel1"]
    for i, (geom, lab) in enumerate(zip(zones.geometry, zones[label_col] if label_col else
                                        [""] * len(zones), strict=True)):
        if geom is None or geom.is_empty:
            continue
        gpd.GeoSeries([geom]).plot(ax=ax, color=palette(i % 9), edgecolor="#333", lw=0.8)
        if geom.area > 0:
            p = geom.representative_point()
            ax.text(p.x, p.y, f"{lab}\n{geom.area:.0f} m²".strip(), ha="center", va="center",
                    fontsize=6.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return _data_uri(fig, "png")
