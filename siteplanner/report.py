"""The leadership report: one self-contained HTML page that prints to A4.

The report reads either a live :class:`~siteplanner.pipeline.RankResult` or
the outputs of a finished run (``ranked_sites.csv``, ``sites.gpkg``,
``run.json`` and any ``floorplans/<site_id>/`` drawings), so
``siteplanner report OUT_DIR`` can rebuild it without running the pipeline.
Every chart is an image inside the page (matplotlib, Agg backend) as a data
URI, and every string from data is HTML-escaped; an SVG from a floor plan
file is shown through ``<img>``, where the browser runs none of its scripts.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from siteplanner._errors import InputError, OutputError, SitePlannerError
from siteplanner._fs import atomic_outputs, safe_component, sha256
from siteplanner.config import Criterion, SelectionSettings
from siteplanner.layers import LayerSource
from siteplanner.maps import (
    COMPETITOR_COLOUR,
    IMPACT_FIELDS,
    OWN_COLOUR,
    SITE_COLOUR,
    access_facts,
    format_value,
    signed,
)
from siteplanner.maps import criteria_of as _criteria_of

__all__ = [
    "ReportInput",
    "build_report",
    "rebuild_report",
    "report_input",
    "weight_sensitivity",
    "write_report",
]

log = logging.getLogger(__name__)

#: How far around a site its card's mini-map reaches, in metres.
MINI_MAP_RADIUS_M = 400.0
#: The one-at-a-time weight change used when the run has no ``stability``.
SENSITIVITY_CHANGE = 0.2

_CRITERION_WORDS = {
    "foot_traffic": "how many people walk past (pedestrian activity nearby)",
    "transit": "how well served the spot is by bus, tram, metro and rail stops",
    "commercial": "how many shops, cafés, offices and services are close by",
    "competition": "how many competitor banks are within reach (fewer is better)",
    "cannibalization": "how close the brand's own branches are (further is better)",
}


@dataclass
class ReportInput:
    """What the report needs, from a live result or a run's output folder.

    All layers are in one projected CRS (metres). ``candidates`` holds every
    candidate with its raw criteria (for the sensitivity check); ``selected``
    the chosen sites in rank order.
    """

    study_name: str
    brand: tuple[str, ...]
    data_date: str | None
    criteria: dict[str, Criterion]
    selection: SelectionSettings
    sources: dict[str, LayerSource]
    foot_traffic_measured: bool
    selected: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    own_branches: gpd.GeoDataFrame
    competitors: gpd.GeoDataFrame
    transit: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None = None
    area: gpd.GeoDataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    floorplans_dir: Path | None = None


# --------------------------------------------------------------------------- inputs

def report_input(source: Any, *, floorplans_dir: Path | None = None) -> ReportInput:
    """Collect the report's inputs from a :class:`RankResult` or a run's output folder."""
    if isinstance(source, str | os.PathLike):
        return _from_outputs(Path(source))
    layers = source.layers
    study = source.study
    return ReportInput(
        study_name=study.name, brand=tuple(study.brand), data_date=source.data_date,
        criteria=dict(study.criteria), selection=study.selection, sources=dict(layers.sources),
        foot_traffic_measured=bool(source.foot_traffic_measured),
        selected=source.selected, candidates=source.candidates,
        own_branches=layers.own_branches, competitors=layers.competitors, transit=layers.transit,
        streets=layers.streets, area=layers.area, catchments=getattr(source, "catchments", None),
        warnings=list(source.warnings), extras=dict(getattr(source, "extras", {}) or {}),
        inputs=[{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)}
                for p in source.inputs if p.is_file()],
        created=datetime.now(UTC).isoformat(timespec="seconds"), floorplans_dir=floorplans_dir)


def _from_outputs(out_dir: Path) -> ReportInput:
    run_path, gpkg = out_dir / "run.json", out_dir / "sites.gpkg"
    for p in (run_path, gpkg):
        if not p.is_file():
            msg = (f"{p}: not found; give the output folder of a `siteplanner rank` run "
                   "(it holds ranked_sites.csv, sites.gpkg and run.json)")
            raise InputError(msg)
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = f"{run_path}: not valid JSON ({e}); rerun `siteplanner rank` to write it again"
        raise InputError(msg) from None
    study = run.get("study") or {}
    try:
        criteria = {name: Criterion(name, c["direction"], float(c["weight"]), float(c["radius_m"]))
                    for name, c in study["criteria"].items()}
        sel = study["selection"]
        selection = SelectionSettings(int(sel["top_k"]), float(sel["min_spacing_m"]),
                                      float(sel["min_distance_to_own_m"]))
    except (KeyError, TypeError, ValueError) as e:
        msg = f"{run_path}: study.criteria or study.selection is incomplete ({e}); rerun the ranking"
        raise InputError(msg) from None
    import pyogrio

    names = {n for n, _ in pyogrio.list_layers(gpkg)}
    for needed in ("candidates", "selected"):
        if needed not in names:
            msg = f"{gpkg}: layer {needed!r} is missing; rerun `siteplanner rank` to write it"
            raise InputError(msg)

    def read(name: str) -> gpd.GeoDataFrame | None:
        return gpd.read_file(gpkg, layer=name, engine="pyogrio") if name in names else None

    cands = read("candidates")
    assert cands is not None
    crs = run.get("crs") or cands.estimate_utm_crs()
    cands = cands.to_crs(crs)
    selected = cands[cands["rank"].notna()].sort_values("rank").copy()
    selected["rank"] = selected["rank"].astype(int)
    selected = _with_csv_columns(selected, out_dir / "ranked_sites.csv")
    cands = cands.set_index(cands["site_id"].astype(str), drop=False)
    selected = selected.set_index(selected["site_id"].astype(str), drop=False)
    cands["cell"] = _h3_cells(cands, crs)

    def layer(name: str) -> gpd.GeoDataFrame:
        g = read(name)
        return g.to_crs(crs) if g is not None else gpd.GeoDataFrame(geometry=[], crs=crs)

    streets = read("streets")
    if streets is None:
        streets = _streets_from_osm(study.get("osm"), crs)
    else:
        streets = streets.to_crs(crs)
    area = read("area")
    catch = read("catchments")
    return ReportInput(
        study_name=str(study.get("name", "siteplanner study")),
        brand=tuple(study.get("brand") or ()), data_date=run.get("osm_data_date"),
        criteria=criteria, selection=selection,
        sources={k: LayerSource.parse(str(v.get("source", "none")))
                 for k, v in (run.get("layers") or {}).items()},
        foot_traffic_measured=run.get("foot_traffic") == "measured",
        selected=selected, candidates=cands, own_branches=layer("own_branches"),
        competitors=layer("competitors"), transit=layer("transit"), streets=streets,
        area=area.to_crs(crs) if area is not None else None,
        catchments=catch.to_crs(crs) if catch is not None else None,
        warnings=list(run.get("warnings") or []),
        extras={k: v for k, v in run.items() if k not in _PROVENANCE_KEYS},
        inputs=list(run.get("inputs") or []), packages=dict(run.get("packages") or {}),
        created=run.get("created"), floorplans_dir=out_dir / "floorplans")


#: run.json keys that io.provenance writes; any other key is a figure a later stage added.
_PROVENANCE_KEYS = frozenset({
    "siteplanner", "created", "inputs", "osm_data_date", "study", "layers", "seconds_per_stage",
    "python", "packages", "foot_traffic", "candidates", "selection", "crs", "warnings"})


def _with_csv_columns(selected: gpd.GeoDataFrame, csv: Path) -> gpd.GeoDataFrame:
    """Add the per-site columns that only ``ranked_sites.csv`` carries (impact, stability)."""
    if not csv.is_file():
        return selected
    table = pd.read_csv(csv, dtype={"site_id": str})
    extra = [c for c in table.columns if c not in selected.columns]
    if not extra or "site_id" not in table:
        return selected
    merged = selected.merge(table[["site_id", *extra]], on="site_id", how="left")
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=selected.crs)


def _h3_cells(cands: gpd.GeoDataFrame, crs: Any) -> gpd.GeoSeries:
    """Candidate cells for the mini-maps: the H3 hexagon when the id is an H3 cell, else a disc."""
    import h3

    ids = cands["site_id"].astype(str).to_numpy()
    valid = np.array([h3.is_valid_cell(s) for s in ids], dtype=bool)
    polys = np.array(cands.geometry.buffer(12.0).to_crs(4326).values, dtype=object)
    if valid.any():
        rings = [[(lng, lat) for lat, lng in h3.cell_to_boundary(s)] for s in ids[valid]]
        polys[valid] = shapely.polygons(rings)
    return gpd.GeoSeries(polys, index=cands.index, crs=4326).to_crs(crs)


def _streets_from_osm(osm: Any, crs: Any) -> gpd.GeoDataFrame | None:
    """The run's streets read again from its OSM file, when that file is still there."""
    if not osm:
        return None
    path = Path(str(osm))
    if not path.is_file():
        log.warning("report: OSM file %s not found; the mini-maps are drawn without streets", path)
        return None
    try:
        name = path.name.lower()
        if name.endswith(".pbf"):
            from siteplanner.sources.pbf import read_pbf

            edges = read_pbf(path).edges
        else:
            from siteplanner.sources.xml import read_osm_xml

            edges = read_osm_xml(path).edges
    except SitePlannerError as e:
        log.warning("report: could not read streets from %s (%s)", path, e)
        return None
    return gpd.GeoDataFrame(edges[["geometry"]], geometry="geometry").to_crs(crs)


# --------------------------------------------------------------------------- sensitivity

def weight_sensitivity(candidates: gpd.GeoDataFrame, own_branches: gpd.GeoDataFrame,
                       criteria: Mapping[str, Criterion], selection: SelectionSettings, *,
                       change: float = SENSITIVITY_CHANGE) -> tuple[pd.DataFrame, pd.Series]:
    """One-at-a-time weight sensitivity of the top-K selection.

    Each criterion's weight is lowered and raised by ``change`` (a share,
    0.2 = 20 %) while the others stay; the candidates are scored again with
    :func:`siteplanner.model.score` and the sites chosen again with
    :func:`siteplanner.selection.select_top`.

    Returns
    -------
    scenarios
        One row per scenario: ``criterion``, ``change`` (-0.2 or +0.2),
        ``weight``, ``kept`` (how many of the base top K are still chosen),
        ``same_rank`` and ``entered`` (the site ids that came in).
    kept_share
        Per base site id, the share of scenarios that still choose it.
    """
    from siteplanner.model import score
    from siteplanner.selection import select_top

    names = [n for n in criteria if n in candidates]
    base = candidates[candidates["rank"].notna()].sort_values("rank")
    base_rank = dict(zip(base["site_id"].astype(str), base["rank"].astype(int), strict=True))
    raw = candidates[names]
    geo = candidates[["site_id", "geometry"]]
    rows = []
    kept_count = pd.Series(0, index=list(base_rank), dtype=int)
    for name in names:
        c = criteria[name]
        for sign in (-1.0, 1.0):
            weights = dict(criteria) | {name: replace(c, weight=c.weight * (1 + sign * change))}
            if sum(w.weight for w in weights.values()) <= 0:
                continue
            scored = geo.join(raw).join(score(raw, {n: weights[n] for n in names}))
            chosen = select_top(gpd.GeoDataFrame(scored, geometry="geometry", crs=candidates.crs),
                                own_branches, k=selection.top_k, min_spacing_m=selection.min_spacing_m,
                                min_distance_to_own_m=selection.min_distance_to_own_m)
            chosen = chosen[chosen["rank"].notna()]
            new_rank = dict(zip(chosen["site_id"].astype(str), chosen["rank"].astype(int),
                                strict=True))
            kept = [s for s in base_rank if s in new_rank]
            kept_count[kept] += 1
            rows.append({
                "criterion": name, "change": sign * change, "weight": weights[name].weight,
                "kept": len(kept), "same_rank": sum(new_rank[s] == base_rank[s] for s in kept),
                "entered": [s for s in new_rank if s not in base_rank],
            })
    n = max(len(rows), 1)
    return pd.DataFrame(rows), (kept_count / n).rename("kept_share")


# --------------------------------------------------------------------------- charts

def _data_uri(fig: Any, fmt: str) -> str:
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    # A fixed layout instead of bbox_inches="tight", which draws every figure twice.
    fig.savefig(buf, format=fmt, dpi=110, metadata=meta)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _figure(w: float, h: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def _breakdown_chart(row: Mapping[str, Any], names: Sequence[str]) -> str:
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


def _mini_map(data: ReportInput, row: Mapping[str, Any], geom: shapely.Geometry,
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


def _overview_map(data: ReportInput) -> str:
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


def _floorplan(data: ReportInput, sid: str) -> str | None:
    """An ``<img>`` of the site's floor plan, or None when no plan was made for it."""
    if data.floorplans_dir is None:
        return None
    folder = data.floorplans_dir / safe_component(sid)
    svg, zones = folder / "plan.svg", folder / "zones.geojson"
    if svg.is_file():
        uri = "data:image/svg+xml;base64," + base64.b64encode(svg.read_bytes()).decode("ascii")
    elif zones.is_file():
        try:
            uri = _zones_drawing(gpd.read_file(zones, engine="pyogrio"))
        except Exception as e:  # a broken plan file must not stop the report
            log.warning("report: cannot draw %s (%s)", zones, e)
            return f"<p class='note'>The floor plan in {escape(str(zones))} could not be read.</p>"
    else:
        return None
    return f"<img class='plan' alt='floor plan of site {escape(sid)}' src='{uri}'>"


def _zones_drawing(zones: gpd.GeoDataFrame) -> str:
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


# --------------------------------------------------------------------------- html

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
  max-width: 980px; margin: 0 auto; padding: 18px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 26px 0 8px;
  border-bottom: 2px solid #f08c00; padding-bottom: 3px; } h3 { font-size: 16px; margin: 0 0 6px; }
.meta { color: #555; font-size: 13px; }
.answer { background: #fff7e6; border-left: 4px solid #f08c00; padding: 10px 14px; font-size: 15px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 6px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.tag { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11.5px; }
.measured { background: #d3f9d8; } .proxy { background: #ffe8cc; }
.site-card { border: 1px solid #ddd; border-radius: 6px; padding: 12px 14px; margin: 16px 0; }
.card-grid { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.card-grid figure { margin: 0; flex: 1 1 300px; } figcaption { font-size: 11.5px; color: #555; }
.card-grid img, img.overview { max-width: 100%; height: auto; }
img.plan { max-width: 100%; max-height: 340px; border: 1px solid #eee; }
.note { color: #555; font-size: 12.5px; } .small { font-size: 12px; }
p.facts { margin: 3px 0; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 3px 0 6px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .site-card { break-before: page; page-break-before: always; break-inside: avoid; border: none;
    padding: 0; }
  h2 { break-after: avoid; } table, figure { break-inside: avoid; }
  img.overview { max-height: 125mm; width: auto; }
  a { color: inherit; text-decoration: none; }
}
"""


def _num(v: Any, kind: str = "number") -> str:
    try:
        return format_value(v, kind)
    except (TypeError, ValueError):
        return escape(str(v))


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df and bool(df[col].notna().any())


_MINI_MAP_KEY = (
    "<p class='note key'>In the maps around each site: "
    f"<span class='dot' style='background:{SITE_COLOUR}'></span>the site (and, paler, other new "
    f"sites), <span class='dot' style='background:{COMPETITOR_COLOUR}'></span>competitors, "
    f"<span class='dot' style='background:{OWN_COLOUR}'></span>own branches, "
    "<span class='dot' style='background:#1971c2'></span>transit stops, grey lines streets"
    "; a shaded outline is the walking catchment.</p>")

_DRIVER_WORDS = {"foot_traffic": "foot traffic", "transit": "transit access",
                 "commercial": "shops and services nearby"}


def _drivers(row: Mapping[str, Any], names: Sequence[str], n: int = 2) -> list[str]:
    parts = sorted(((float(row[f"{c}_contribution"]), c) for c in names), reverse=True)
    return [_DRIVER_WORDS.get(c, c.replace("_", " ")) for v, c in parts[:n] if v > 0]


def _wgs84(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    g = gdf.geometry.to_crs(4326)
    return g.y.to_numpy(), g.x.to_numpy()


def build_report(source: Any, *, floorplans_dir: Path | None = None) -> str:
    """The report as one HTML document.

    Parameters
    ----------
    source
        A :class:`~siteplanner.pipeline.RankResult`, a run's output folder, or
        a :class:`ReportInput`.
    floorplans_dir
        Where ``<site_id>/plan.svg`` or ``<site_id>/zones.geojson`` floor
        plans are, for a live result (a run's folder uses its ``floorplans/``).
    """
    data = source if isinstance(source, ReportInput) else report_input(
        source, floorplans_dir=floorplans_dir)
    sel = data.selected
    names = _criteria_of(sel)
    k = len(sel)
    brand = " / ".join(data.brand) or "the brand"
    has_stability = _has(sel, "stability")
    scen, kept_share = weight_sensitivity(data.candidates, data.own_branches, data.criteria,
                                          data.selection)
    lat, lon = _wgs84(sel) if k else (np.array([]), np.array([]))
    records = sel.drop(columns=[c for c in ("geometry", "cell") if c in sel]).to_dict("records")
    parts: list[str] = []
    date = (data.data_date or "unknown")[:10]
    parts.append(
        f"<header><h1>Where {escape(brand)} should open next: {escape(data.study_name)}</h1>"
        f"<div class='meta'>Top {k} sites &middot; OpenStreetMap data as of {escape(date)} &middot; "
        f"report made {escape((data.created or '')[:10])}</div></header>")

    # Summary
    parts.append("<h2>Summary</h2>")
    parts.append(f"<p class='answer'>{_answer(data, records, names, scen)}</p>")
    parts.append(_sources_table(data))
    if data.warnings:
        parts.append("<p class='note'>Warnings from the run: "
                     + "; ".join(escape(w) for w in data.warnings) + "</p>")
    parts.append(f"<figure><img class='overview' alt='overview map' src='{_overview_map(data)}'>"
                 "<figcaption>The study area, every candidate cell shaded by score, and the chosen "
                 "sites numbered by rank. The interactive map.html has every layer.</figcaption>"
                 "</figure>")

    # Top-K table
    parts.append(f"<h2>The top {k} sites</h2>")
    impact_cols = [c for c in IMPACT_FIELDS if c != "stability" and _has(sel, c)]
    head = ["<th class='num'>rank</th><th>site</th><th class='num'>lat, lon</th>"
            "<th class='num'>score</th><th>main reasons</th><th class='num'>nearest own branch</th>"]
    head += [f"<th class='num'>{escape(IMPACT_FIELDS[c][0])}</th>" for c in impact_cols]
    head.append("<th class='num'>stability</th>" if has_stability
                else f"<th class='num'>kept under &plusmn;{SENSITIVITY_CHANGE:.0%} weights</th>")
    body = []
    for i, r in enumerate(records):
        sid = str(r["site_id"])
        near = r.get("nearest_own_m")
        cells = [f"<td class='num'>{int(r['rank'])}</td>",
                 f"<td><a href='#site-{escape(sid)}'>{escape(sid)}</a></td>",
                 f"<td class='num'>{lat[i]:.5f}, {lon[i]:.5f}</td>",
                 f"<td class='num'>{float(r['score']):.3f}</td>",
                 f"<td>{escape(', '.join(_drivers(r, names)) or '–')}</td>",
                 f"<td class='num'>{_num(near)} m</td>" if near is not None else "<td></td>"]
        cells += [f"<td class='num'>{_num(r.get(c))}</td>" for c in impact_cols]
        stab = r.get("stability") if has_stability else kept_share.get(sid, float("nan"))
        cells.append(f"<td class='num'>{_num(stab, 'share')}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("<table class='top-k'><thead><tr>" + "".join(head) + "</tr></thead><tbody>"
                 + "".join(body) + "</tbody></table>")

    # One card per site
    parts.append(_MINI_MAP_KEY)
    for i, r in enumerate(records):
        parts.append(_site_card(data, r, sel.geometry.iloc[i], names, lat[i], lon[i],
                                None if has_stability else kept_share.get(str(r["site_id"]))))

    parts.append(_method(data, names))
    parts.append(_extras_section(data.extras))
    parts.append(_sensitivity_section(data, scen, has_stability, k))
    parts.append(_sources_section(data))
    title = escape(f"{data.study_name}: top {k} sites for {brand}")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _answer(data: ReportInput, records: list[dict[str, Any]], names: Sequence[str],
            scen: pd.DataFrame) -> str:
    brand = escape(" / ".join(data.brand) or "the brand")
    k = len(records)
    if not k:
        return f"No site met the selection rules, so the study proposes no new {brand} branch."
    best = records[0]
    why = _drivers(best, names)
    text = (f"Open the next {brand} branches at the {k} sites below, in rank order. "
            f"The best, site #1 ({escape(str(best['site_id']))}), scores {float(best['score']):.3f}"
            + (f", above all for its {escape(' and '.join(why))}" if why else "") + ". ")
    text += (f"Every site keeps at least {data.selection.min_spacing_m:.0f} m from the others and "
             f"{data.selection.min_distance_to_own_m:.0f} m from an existing {brand} branch. ")
    if len(scen):
        worst = int(scen["kept"].min())
        text += (f"When any one weight moves by &plusmn;{SENSITIVITY_CHANGE:.0%}, at least {worst} "
                 f"of the {k} sites stay in the top {k}. ")
    text += ("Foot traffic is measured counts." if data.foot_traffic_measured else
             "Foot traffic is a proxy built from shops, services and transit stops in "
             "OpenStreetMap, not measured counts: confirm the leading sites on the ground.")
    return text


def _sources_table(data: ReportInput) -> str:
    labels = {"area": "study area", "streets": "streets", "transit": "transit stops",
              "competitors": "competitor branches", "own_branches": "own branches",
              "pois": "shops and services", "foot_traffic": "foot traffic",
              "candidates": "candidate sites"}
    rows = []
    for key, src in data.sources.items():
        where = {"osm": "OpenStreetMap", "user": f"your file {src.path}",
                 "proxy": "proxy model from OpenStreetMap", "none": "none"}[src.kind]
        tag = ("<span class='tag measured'>measured</span>" if src.measured
               else "<span class='tag proxy'>proxy</span>")
        rows.append(f"<tr><td>{escape(labels.get(key, key))}</td><td>{tag}</td>"
                    f"<td>{escape(where)}</td></tr>")
    return ("<table class='sources small'><thead><tr><th>layer</th><th>kind</th><th>source</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _site_card(data: ReportInput, r: Mapping[str, Any], geom: shapely.Geometry,
               names: Sequence[str], lat: float, lon: float, kept: float | None) -> str:
    sid = str(r["site_id"])
    place = [f"score <b>{float(r['score']):.3f}</b>", f"at {lat:.5f}, {lon:.5f}"]
    if r.get("nearest_own_m") is not None and math.isfinite(float(r["nearest_own_m"])):
        place.append(f"{float(r['nearest_own_m']):.0f} m from the nearest own branch")
    if kept is not None and math.isfinite(kept):
        place.append(f"chosen in {kept:.0%} of the &plusmn;{SENSITIVITY_CHANGE:.0%} weight scenarios")
    demand = [f"{escape(label)}: <b>{_num(r.get(col), kind)}</b>"
              for col, (label, kind) in IMPACT_FIELDS.items()
              if r.get(col) is not None and not (isinstance(r[col], float) and math.isnan(r[col]))]
    access = [f"{escape(label)}: <b>{escape(value)}</b>" for label, value in access_facts(r)]
    facts = "".join(f"<p class='facts'>{' &middot; '.join(line)}</p>"
                    for line in (place, demand, access) if line)
    raw = "".join(f"<tr><td>{escape(n.replace('_', ' '))}</td><td class='num'>{_num(r.get(n))}</td>"
                  f"<td class='num'>{signed(r[f'{n}_contribution'])}</td></tr>" for n in names)
    figs = [f"<figure><img alt='score breakdown' src='{_breakdown_chart(r, names)}'>"
            "<figcaption>How the score is made: green parts add, red parts subtract."
            "</figcaption></figure>",
            f"<figure><img alt='map around the site' src='{_mini_map(data, r, geom)}'>"
            "<figcaption>Streets within about "
            f"{MINI_MAP_RADIUS_M:.0f} m"
            + (", with the walking catchment" if data.catchments is not None else "")
            + ".</figcaption></figure>"]
    plan = _floorplan(data, sid)
    if plan:
        figs.append(f"<figure>{plan}<figcaption>Floor plan.</figcaption></figure>")
    return (f"<section class='site-card' id='site-{escape(sid)}'>"
            f"<h3>Site #{int(r['rank'])} &middot; {escape(sid)}</h3>"
            f"{facts}<div class='card-grid'>{''.join(figs)}</div>"
            "<table class='small'><thead><tr><th>criterion</th><th class='num'>raw value</th>"
            f"<th class='num'>part of score</th></tr></thead><tbody>{raw}</tbody></table></section>")


def _method(data: ReportInput, names: Sequence[str]) -> str:
    total = sum(c.weight for c in data.criteria.values()) or 1.0
    rows = "".join(
        f"<tr><td>{escape(n.replace('_', ' '))}</td>"
        f"<td>{escape(_CRITERION_WORDS.get(n, 'a criterion of the study'))}</td>"
        f"<td>{'adds' if data.criteria[n].direction == 'benefit' else 'subtracts'}</td>"
        f"<td class='num'>{data.criteria[n].weight / total:.0%}</td>"
        f"<td class='num'>{data.criteria[n].radius_m:.0f} m</td></tr>"
        for n in names if n in data.criteria)
    sel = data.selection
    return (
        "<h2>How the sites were chosen</h2>"
        "<p>The study area is covered with small hexagonal cells (H3), each a candidate site. "
        "For every candidate we measure the criteria below within walking distance, then rescale "
        "each one so the weakest candidate gets 0 and the strongest 1. The score is the weighted "
        "sum: criteria that help add their share, criteria that hurt subtract it. The parts add "
        "up exactly to the score, so every site shows why it ranks where it does.</p>"
        "<table class='small'><thead><tr><th>criterion</th><th>what it measures</th>"
        "<th>effect</th><th class='num'>weight</th><th class='num'>reach</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<p>Sites are then taken in score order, skipping any within {sel.min_spacing_m:.0f} m of "
        f"a site already chosen or within {sel.min_distance_to_own_m:.0f} m of an existing branch, "
        f"until {sel.top_k} are chosen. Scores compare candidates within this study only.</p>")


def _flatten(d: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, v in d.items():
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(v, Mapping) and depth < 1:
            rows += _flatten(v, f"{prefix}{key} › ", depth + 1)
        elif isinstance(v, str | int | float | bool) or v is None:
            rows.append((name, v))
    return rows


def _extras_section(extras: Mapping[str, Any]) -> str:
    """The run's other named figures (market impact, validation scores, ...), when it has any."""
    rows = _flatten(extras)[:40]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(k)}</td><td class='num'>"
        f"{_num(v) if isinstance(v, int | float) and not isinstance(v, bool) else escape(str(v))}"
        "</td></tr>" for k, v in rows)
    return ("<h3>Other figures from the run</h3><table class='extras small'><tbody>"
            f"{body}</tbody></table>")


def _sensitivity_section(data: ReportInput, scen: pd.DataFrame, has_stability: bool,
                         k: int) -> str:
    out = ["<h2>How firm the ranking is</h2>"]
    if has_stability:
        out.append("<p>The <b>stability</b> column in the top-K table comes from the run: the share "
                   "of its scenarios in which each site is still chosen.</p>")
    if len(scen):
        out.append(f"<p>Each weight was lowered and raised by {SENSITIVITY_CHANGE:.0%} in turn, the "
                   "candidates scored again and the sites chosen again by the same rules. The table "
                   f"counts how many of today's top {k} are still chosen.</p>")
        rows = "".join(
            f"<tr><td>{escape(str(s.criterion).replace('_', ' '))}</td>"
            f"<td class='num'>{s.change:+.0%}</td>"
            f"<td class='num'>{s.kept} of {k}</td><td class='num'>{s.same_rank}</td>"
            f"<td>{escape(', '.join(s.entered)) or '–'}</td></tr>"
            for s in scen.itertuples())
        out.append("<table class='sensitivity small'><thead><tr><th>weight</th><th class='num'>change"
                   "</th><th class='num'>still in top K</th><th class='num'>same rank</th>"
                   f"<th>sites that came in</th></tr></thead><tbody>{rows}</tbody></table>")
    return "".join(out)


def _sources_section(data: ReportInput) -> str:
    items = [
        "<li><b>OpenStreetMap</b> (streets, transit stops, banks, shops and services): "
        "&copy; OpenStreetMap contributors, Open Database License (ODbL) 1.0, "
        "<a href='https://www.openstreetmap.org/copyright'>openstreetmap.org/copyright</a>. "
        f"Data as of {escape((data.data_date or 'unknown')[:10])}.</li>",
        "<li><b>Candidate cells</b>: Uber's H3 hexagonal grid (Apache 2.0).</li>",
        "<li><b>Interactive map</b> (map.html): Leaflet 1.9.4 and Leaflet.heat, BSD 2-Clause, "
        "inlined with their licence headers; base tiles from the OpenStreetMap tile servers when "
        "online.</li>",
    ]
    for src in sorted({str(s.path) for s in data.sources.values() if s.kind == "user"}):
        items.append(f"<li><b>Your file</b> {escape(src)}: licence as supplied by its owner.</li>")
    inputs = "".join(
        f"<tr><td>{escape(str(i.get('path', '')))}</td><td class='num'>{_num(i.get('bytes', ''))}"
        f"</td><td><code>{escape(str(i.get('sha256', ''))[:16])}</code></td></tr>"
        for i in data.inputs)
    out = "<h2>Data sources and licences</h2><ul>" + "".join(items) + "</ul>"
    if inputs:
        out += ("<table class='small'><thead><tr><th>input file</th><th class='num'>bytes</th>"
                f"<th>sha256 (start)</th></tr></thead><tbody>{inputs}</tbody></table>")
    if data.packages:
        out += ("<p class='note'>Made with " + ", ".join(
            f"{escape(str(k))} {escape(str(v))}" for k, v in data.packages.items() if v) + ".</p>")
    return out


# --------------------------------------------------------------------------- writing

def write_report(source: Any, path: Path, *, floorplans_dir: Path | None = None) -> Path:
    """Write :func:`build_report` to ``path`` atomically and return ``path``.

    ``source`` is a :class:`RankResult` or a run's output folder. For a
    result, floor plans are looked for in ``path``'s folder under
    ``floorplans/`` unless ``floorplans_dir`` is given.
    """
    path = Path(path)
    if floorplans_dir is None and not isinstance(source, str | os.PathLike):
        floorplans_dir = path.parent / "floorplans"
    text = build_report(source, floorplans_dir=floorplans_dir)
    try:
        with atomic_outputs(path.parent, keep_outputs=True) as tmp:
            (tmp / path.name).write_text(text, encoding="utf-8")
    except OutputError:
        raise
    except OSError as e:
        msg = f"{path}: cannot write the report ({e.strerror}); choose a writable output folder"
        raise OutputError(msg) from None
    return path


def rebuild_report(out_dir: Path) -> Path:
    """Rebuild ``OUT_DIR/report.html`` from a run's outputs (``siteplanner report OUT_DIR``)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        msg = f"{out_dir}: no such folder; give the --out folder of a `siteplanner rank` run"
        raise InputError(msg)
    return write_report(out_dir, out_dir / "report.html")
