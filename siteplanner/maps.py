"""The shared leadership map: one self-contained HTML file.

The map is a folium map whose CDN links are replaced by inlined copies of
Leaflet and Leaflet.heat (see :mod:`siteplanner._assets`), so it opens from an
email attachment on a network with no internet; the OpenStreetMap tiles are
its only online part, and the study area and streets are drawn as a vector
base underneath them for when the tiles cannot load.

Strings from data (OSM names, user files) never reach JavaScript source.
Every layer's data travels as JSON (folium escapes ``<``, ``>``, ``&`` and
``'`` in it); tooltips are set as DOM text nodes in the browser; popups are
HTML built here with every data string passed through :func:`escape`; layer
names (which Leaflet's layer control inserts as HTML) go through
:func:`escape` too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.plugins import HeatMap
from folium.utilities import JsCode
from matplotlib import colormaps
from matplotlib.colors import to_hex

from siteplanner._assets import heat_js, inline_script, inline_style, leaflet_css, leaflet_js
from siteplanner._fs import safe_component
from siteplanner.config import CRITERIA

__all__ = [
    "ATTRIBUTION",
    "IMPACT_FIELDS",
    "MODE_COLOURS",
    "access_facts",
    "build_map",
    "criteria_of",
    "escape",
    "floorplan_links",
    "format_value",
    "signed",
    "write_map",
]

ATTRIBUTION = "© OpenStreetMap contributors"
_ATTRIBUTION_HTML = ('&copy; <a href="https://www.openstreetmap.org/copyright">'
                     "OpenStreetMap</a> contributors")
_JS_ENTITIES = {"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"}
MODE_COLOURS = {"rail": "#6a3d9a", "metro": "#d6336c", "tram": "#2f9e44", "bus": "#1971c2"}
OWN_COLOUR, COMPETITOR_COLOUR, SITE_COLOUR = "#0b7285", "#c92a2a", "#f08c00"
SCORE_CMAP, HEAT_GRADIENT = "YlGnBu", {0.3: "#fee391", 0.6: "#fe9929", 0.85: "#d7301f", 1.0: "#7f0000"}

#: Optional per-site figures from the market-impact and stability stages:
#: column name -> (label in popups and the report, how to format it).
IMPACT_FIELDS: dict[str, tuple[str, str]] = {
    "expected_demand": ("Expected demand", "number"),
    "net_new_demand": ("Net-new demand", "number"),
    "from_competitors": ("of which won from competitors", "number"),
    "cannibalized": ("taken from own branches", "number"),
    "stability": ("Stability (share of weight scenarios that keep it)", "share"),
}

# Metres per decimal of a degree: 5 decimals is ~1 m, finer than any street
# line is drawn at the zooms a city map is read at.
_DECIMALS = 5

_ON_EACH_FEATURE = JsCode("""function (feature, layer) {
    var p = feature.properties || {};
    if (p.tip) {
        var tip = document.createElement('span');
        tip.textContent = p.tip;
        layer.bindTooltip(tip, {sticky: !layer.getLatLng});
    }
    if (p.popup) { layer.bindPopup(p.popup, {maxWidth: 380}); }
    if (typeof p.rank === 'number') {
        layer.setIcon(L.divIcon({className: 'site-marker', html: String(p.rank),
                                 iconSize: [26, 26], iconAnchor: [13, 13]}));
    }
}""")

_CSS = """
.site-marker{background:#f08c00;color:#fff;border:2px solid #fff;border-radius:50%;
  font:bold 12px/22px sans-serif;text-align:center;box-shadow:0 0 4px #000;box-sizing:border-box}
.sp-box{position:fixed;z-index:1000;background:rgba(255,255,255,.94);padding:6px 10px;
  border-radius:4px;box-shadow:0 0 4px #888;font:12px/1.35 sans-serif;color:#222}
.sp-title{top:10px;left:54px;max-width:46%}
.sp-title b{font-size:15px}
.sp-legend{bottom:28px;right:10px;max-width:240px}
.sp-legend .sw{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-2px;
  border:1px solid rgba(0,0,0,.35)}
.sp-legend .dot{border-radius:50%}
.sp-legend .ramp{height:10px;width:200px;margin:2px 0;border:1px solid rgba(0,0,0,.3)}
.sp-legend .ends{display:flex;justify-content:space-between;width:202px;font-size:11px}
.sp-pop table{font-size:11px;border-collapse:collapse}
.sp-pop td,.sp-pop th{padding:1px 4px}
.sp-pop .bar{height:8px}
@media print{.leaflet-control-layers{display:none}}
"""


def escape(text: object) -> str:
    """HTML-escape ``text`` and neutralise the characters that end a JS template literal."""
    s = html.escape(str(text), quote=True)
    return "".join(_JS_ENTITIES.get(ch, ch) for ch in s)


def criteria_of(table: pd.DataFrame) -> list[str]:
    """The criteria with a ``NAME_contribution`` column, the standard ones first."""
    names = [c for c in CRITERIA if f"{c}_contribution" in table]
    extra = sorted(c[: -len("_contribution")] for c in table.columns
                   if isinstance(c, str) and c.endswith("_contribution")
                   and c[: -len("_contribution")] not in CRITERIA)
    return names + extra


def format_value(value: Any, kind: str = "number") -> str:
    """A figure for people: ``share`` in [0, 1] as a percentage, others to 3 significant digits."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{int(value):,}"
    v = float(value)
    if not math.isfinite(v):
        return "–"
    if kind == "share" and 0 <= v <= 1:
        return f"{v:.0%}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def access_facts(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Walking access to transit from a site's ``walk_min_<mode>`` and ``stops_within_<N>min``."""
    facts = []
    for col in sorted(k for k in row if isinstance(k, str) and k.startswith("walk_min_")):
        if _present(row, col):
            facts.append((f"Walk to nearest {col[len('walk_min_'):]} stop",
                          f"{float(row[col]):.1f} min"))
    for col in sorted(k for k in row if isinstance(k, str) and k.startswith("stops_within_")):
        if _present(row, col):
            within = col[len("stops_within_"):].replace("min", " min")
            facts.append((f"Transit stops within {within} walk", f"{float(row[col]):.0f}"))
    return facts


def signed(value: float) -> str:
    """``+0.123`` / ``-0.123``, with no ``-0.000`` for a part that rounds to zero."""
    return f"{round(float(value), 3) + 0.0:+.3f}"


def _present(row: Mapping[str, Any], col: str) -> bool:
    v = row.get(col)
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _popup_html(row: Mapping[str, Any], criteria: Sequence[str], floorplan: str | None) -> str:
    rows = []
    for name in criteria:
        c = float(row[f"{name}_contribution"])
        width = min(100.0, abs(c) * 200)
        colour = "#2b8a3e" if c >= 0 else "#c92a2a"
        raw = f"{float(row[name]):.2f}" if _present(row, name) else ""
        rows.append(
            f"<tr><td>{escape(name.replace('_', ' '))}</td><td style='text-align:right'>{raw}</td>"
            f"<td style='width:104px'><div class='bar' style='background:{colour};"
            f"width:{width:.0f}px'></div></td><td style='text-align:right'>{signed(c)}</td></tr>")
    impact = "".join(
        f"<tr><td colspan='3'>{escape(label)}</td><td style='text-align:right'>"
        f"{escape(format_value(row[col], kind))}</td></tr>"
        for col, (label, kind) in IMPACT_FIELDS.items() if _present(row, col))
    impact += "".join(f"<tr><td colspan='3'>{escape(label)}</td><td style='text-align:right'>"
                      f"{escape(value)}</td></tr>" for label, value in access_facts(row))
    near = (f"<br>nearest own branch {float(row['nearest_own_m']):.0f} m"
            if _present(row, "nearest_own_m") and np.isfinite(float(row["nearest_own_m"])) else "")
    link = (f"<br><a href='{escape(floorplan)}' target='_blank'>floor plan</a>"
            if floorplan else "")
    return (f"<div class='sp-pop'><b>Site #{int(row['rank'])}</b> &middot; "
            f"{escape(row['site_id'])}<br>score <b>{float(row['score']):.3f}</b>{near}"
            "<table><tr><th>criterion</th><th>raw</th><th></th><th>part</th></tr>"
            + "".join(rows) + impact + "</table>" + link + "</div>")


def _round_coords(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, _DECIMALS))


def _features(gdf: gpd.GeoDataFrame, props: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection in WGS84 with rounded coordinates and only ``props``."""
    geoms = _round_coords(gdf.geometry.to_crs(4326).values)
    cols = {k: list(v) for k, v in props.items()}
    feats = []
    for i, geom in enumerate(geoms):
        if geom is None or shapely.is_empty(geom):
            continue
        p = {k: _jsonable(v[i]) for k, v in cols.items()}
        feats.append({"type": "Feature", "properties": {k: v for k, v in p.items() if v is not None},
                      "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": feats}


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _label_column(gdf: pd.DataFrame, candidates: Sequence[str]) -> pd.Series:
    for col in candidates:
        if col in gdf:
            return gdf[col].astype(object).where(gdf[col].notna(), "").astype(str)
    return pd.Series([""] * len(gdf), index=gdf.index)


def _colours(values: np.ndarray, cmap: str, *, lo: float | None = None,
             hi: float | None = None) -> list[str]:
    lo = float(np.nanmin(values)) if lo is None else lo
    hi = float(np.nanmax(values)) if hi is None else hi
    t = np.zeros(len(values)) if hi <= lo else np.clip((values - lo) / (hi - lo), 0, 1)
    ramp = colormaps[cmap]
    return [to_hex(ramp(0.12 + 0.88 * x)) for x in np.nan_to_num(t)]


def _points_layer(gdf: gpd.GeoDataFrame, name: str, colour: str, tips: Sequence[str], *,
                  radius: float, show: bool = True) -> folium.GeoJson:
    data = _features(gdf, {"tip": tips})
    return folium.GeoJson(
        data, name=escape(name), show=show, on_each_feature=_ON_EACH_FEATURE,
        marker=folium.CircleMarker(radius=radius, color="#fff", weight=1, fill=True,
                                   fill_color=colour, fill_opacity=0.95))


def _streets_lines(streets: gpd.GeoDataFrame) -> np.ndarray:
    if not len(streets):
        return np.array([], dtype=object)
    # Merging segments into street lines and dropping sub-metre detail keeps
    # the vector base small while it stays legible at street zoom.
    # One multi-line feature carries no per-feature overhead in the page.
    merged = shapely.line_merge(shapely.union_all(streets.geometry.values))
    return np.array([shapely.simplify(merged, 1.0)], dtype=object)


def floorplan_links(out_dir: Path, site_ids: Sequence[str]) -> dict[str, str]:
    """Relative links to each site's floor plan found under ``out_dir/floorplans/<site_id>/``.

    A drawn plan (``plan.svg``) is linked directly; a plan given only as zones
    (``zones.geojson``) links to the site's card in ``report.html``, where it is drawn.
    """
    links: dict[str, str] = {}
    for sid in site_ids:
        name = safe_component(str(sid))  # the folder floorplan.sites writes; never a path
        folder = out_dir / "floorplans" / name
        if (folder / "plan.svg").is_file():
            links[str(sid)] = f"floorplans/{name}/plan.svg"
        elif (folder / "zones.geojson").is_file():
            links[str(sid)] = f"report.html#site-{quote(str(sid), safe='')}"
    return links


def _legend(entries: list[tuple[str, str, bool]], score_range: tuple[float, float] | None,
            heat: bool) -> str:
    rows = []
    if score_range is not None:
        stops = ", ".join(to_hex(colormaps[SCORE_CMAP](0.12 + 0.88 * t)) for t in (0, .25, .5, .75, 1))
        rows.append("<div><b>Candidate score</b> (H3 cells)</div>"
                    f"<div class='ramp' style='background:linear-gradient(to right, {stops})'></div>"
                    f"<div class='ends'><span>{score_range[0]:.2f}</span>"
                    f"<span>{score_range[1]:.2f}</span></div>")
    if heat:
        stops = ", ".join(HEAT_GRADIENT.values())
        rows.append("<div><b>Foot traffic</b> (heat)</div>"
                    f"<div class='ramp' style='background:linear-gradient(to right, #fff0, {stops})'>"
                    "</div><div class='ends'><span>low</span><span>high</span></div>")
    for label, colour, dot in entries:
        cls = "sw dot" if dot else "sw"
        rows.append(f"<div><span class='{cls}' style='background:{colour}'></span>"
                    f"{escape(label)}</div>")
    return "<div class='sp-box sp-legend'>" + "".join(rows) + "</div>"


def build_map(result: Any, *, floorplans: Mapping[str, str] | None = None) -> folium.Map:
    """The leadership map of a ranking run, with every script and style inlined.

    Parameters
    ----------
    result
        A :class:`~siteplanner.pipeline.RankResult`. Its optional parts
        (``catchments``, ``clusters``, ``territories``, impact and stability
        columns on ``selected``) are drawn when present.
    floorplans
        Site id -> link to that site's floor plan, shown in its popup.

    Returns
    -------
    folium.Map
        Save it with ``.save(path)`` or show it in a notebook.
    """
    from siteplanner.footfall import foot_traffic_points

    layers = result.layers
    floorplans = dict(floorplans or {})
    area = layers.area.to_crs(4326)
    w, s, e, n = area.total_bounds
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], tiles=None, control_scale=True,
                   max_zoom=19, zoom_start=15, prefer_canvas=False)
    m.default_js, m.default_css = [], []
    root = m.get_root()
    root.title = escape(f"{result.study.name}: top {len(result.selected)} sites")  # type: ignore[attr-defined]
    root.header.add_child(folium.Element(inline_style(leaflet_css() + _CSS)), name="sp_css")  # type: ignore[attr-defined]
    root.header.add_child(folium.Element(inline_script(leaflet_js())), name="sp_leaflet")  # type: ignore[attr-defined]
    root.header.add_child(folium.Element(inline_script(heat_js())), name="sp_heat")  # type: ignore[attr-defined]
    folium.TileLayer("OpenStreetMap", attr=_ATTRIBUTION_HTML, name="OpenStreetMap tiles (online)",
                     max_zoom=19).add_to(m)
    m.fit_bounds([[s, w], [n, e]])
    legend: list[tuple[str, str, bool]] = []

    base = folium.FeatureGroup(name="Study area and streets (offline base)", show=True)
    folium.GeoJson(_features(area, {}), style_function=lambda _f: {
        "color": "#444", "weight": 2, "fill": False, "dashArray": "5 4"},
        attribution=_ATTRIBUTION_HTML).add_to(base)
    lines = _streets_lines(layers.streets)
    if len(lines):
        streets = gpd.GeoDataFrame(geometry=lines, crs=layers.crs)
        folium.GeoJson(_features(streets, {}), style_function=lambda _f: {
            "color": "#8a8a8a", "weight": 1.2, "opacity": 0.9}).add_to(base)
    base.add_to(m)

    cands = result.candidates
    score_range = None
    if len(cands) and "cell" in cands:
        cells = gpd.GeoDataFrame(cands.drop(columns="geometry"), geometry="cell", crs=layers.crs)
        sc = cells["score"].to_numpy(dtype=float)
        score_range = (float(np.nanmin(sc)), float(np.nanmax(sc)))
        rank = cells["rank"]
        tips = [f"score {v:.3f}" + (f" · site #{int(r)}" if pd.notna(r) else "") + f" · {st}"
                for v, r, st in zip(sc, rank, cells["status"].astype(str), strict=True)]
        styles = [{"fillColor": c} for c in _colours(sc, SCORE_CMAP)]
        folium.GeoJson(_features(cells, {"tip": tips, "style": styles}),
                       name="Candidate score (H3 cells)", show=True, on_each_feature=_ON_EACH_FEATURE,
                       color="#ffffff", weight=0.3, fill_opacity=0.55).add_to(m)

    pts, measured = foot_traffic_points(layers)
    if len(pts):
        g = pts.to_crs(4326)
        wts = pts["count"].to_numpy(dtype=float)
        wts = wts / wts.max() if wts.max() > 0 else np.ones(len(wts))
        data = np.column_stack([np.round(g.geometry.y, _DECIMALS), np.round(g.geometry.x, _DECIMALS),
                                np.round(wts, 3)])
        label = "Foot traffic: " + ("measured counts" if measured else "OSM proxy (shops, stops)")
        heat = HeatMap(data.tolist(), name=escape(label), show=False, radius=22, blur=18,
                       min_opacity=0.25, gradient=HEAT_GRADIENT)
        heat.default_js = []
        heat.add_to(m)
        if measured:
            names = _label_column(pts, ["name", "label", "id"])
            tips = [f"{nm + ': ' if nm else ''}{c:,.0f} counted" for nm, c in
                    zip(names, pts["count"].to_numpy(dtype=float), strict=True)]
            _points_layer(pts, "Foot-traffic counters", "#7f0000", tips, radius=5).add_to(m)
            legend.append(("Foot-traffic counter", "#7f0000", True))

    transit = layers.transit
    if len(transit):
        stop_names = _label_column(transit, ["name"])
        for mode in sorted(transit["mode"].astype(str).unique()):
            sel = (transit["mode"].astype(str) == mode).to_numpy()
            colour = MODE_COLOURS.get(mode, "#444")
            tips = [f"{mode} stop{': ' + nm if nm else ''}" for nm in stop_names[sel]]
            _points_layer(transit[sel], f"Transit: {mode}", colour, tips, radius=4,
                          show=mode != "bus").add_to(m)
            legend.append((f"Transit: {mode}", colour, True))

    own_name = " / ".join(result.study.brand)
    for gdf, label, colour in ((layers.competitors, "Competitors", COMPETITOR_COLOUR),
                               (layers.own_branches, f"Own branches ({own_name})", OWN_COLOUR)):
        if len(gdf):
            tips = list(_label_column(gdf, ["label", "name"]))
            _points_layer(gdf, label, colour, tips, radius=7).add_to(m)
            legend.append((label, colour, True))

    rank_of = dict(zip(result.selected["site_id"].astype(str),
                       result.selected["rank"].astype(int), strict=True))
    catch = getattr(result, "catchments", None)
    if catch is not None and len(catch):
        _catchments_layer(catch, rank_of).add_to(m)
        legend.append(("Catchment (walk time)", "#5f3dc4", False))
    for attr, label, colour in (("clusters", "Opportunity clusters", "#e8590c"),
                                ("territories", "Territories", "#495057")):
        gdf = getattr(result, attr, None)
        if gdf is not None and len(gdf):
            _zones_layer(gdf, label, colour).add_to(m)
            legend.append((label, colour, False))

    sel = result.selected
    crit = criteria_of(sel)
    records = sel.drop(columns=[c for c in ("geometry", "cell") if c in sel]).to_dict("records")
    popups = [_popup_html(r, crit, floorplans.get(str(r["site_id"]))) for r in records]
    tips = [f"Site #{int(r['rank'])}: score {float(r['score']):.3f}" for r in records]
    ranks = [int(r["rank"]) for r in records]
    folium.GeoJson(_features(sel, {"rank": ranks, "tip": tips, "popup": popups}),
                   name="Selected sites (numbered by rank)", show=True,
                   on_each_feature=_ON_EACH_FEATURE,
                   marker=folium.Marker(icon=folium.DivIcon(class_name="site-marker"))).add_to(m)
    legend.insert(0, (f"Selected site (rank 1 to {len(sel)})", SITE_COLOUR, True))

    folium.LayerControl(collapsed=False).add_to(m)
    data_date = result.data_date or "date unknown"
    title = (f"<div class='sp-box sp-title'><b>{escape(result.study.name)}</b><br>"
             f"Top {len(sel)} new sites for {escape(own_name)}<br>"
             f"<small>OSM data {escape(data_date[:10])} &middot; foot traffic: "
             f"{'measured counts' if result.foot_traffic_measured else 'OSM proxy'}"
             f" &middot; {escape(ATTRIBUTION)}</small></div>")
    root.html.add_child(folium.Element(title + _legend(legend, score_range, len(pts) > 0)))  # type: ignore[attr-defined]
    return m


def _catchments_layer(catch: gpd.GeoDataFrame, rank_of: Mapping[str, int]) -> folium.GeoJson:
    c = catch.copy()
    minutes = (c["minutes"].to_numpy(dtype=float) if "minutes" in c
               else np.full(len(c), np.nan))
    order = np.argsort(-np.nan_to_num(minutes, nan=0.0), kind="stable")
    c = c.iloc[order]
    minutes = minutes[order]
    sid = c["site_id"].astype(str).to_numpy() if "site_id" in c else np.full(len(c), "")
    tips = [(f"site #{rank_of[s]} " if s in rank_of else "site ") + s
            + (f": {mn:g}-minute walk" if np.isfinite(mn) else " catchment")
            for s, mn in zip(sid, minutes, strict=True)]
    mx = np.nanmax(minutes) if np.isfinite(minutes).any() else 1.0
    # Faint fills: ten sites' catchments overlap, and the map beneath must stay readable.
    styles = [{"fillOpacity": round(0.04 + 0.08 * (1 - (mn / mx if np.isfinite(mn) else 1)), 3)}
              for mn in minutes]
    return folium.GeoJson(_features(c, {"tip": tips, "style": styles}), name="Catchments (walk time)",
                          show=len(rank_of) <= 3, on_each_feature=_ON_EACH_FEATURE, color="#5f3dc4", weight=1,
                          fill_color="#7950f2")


def _zones_layer(gdf: gpd.GeoDataFrame, name: str, colour: str) -> folium.GeoJson:
    labels = _label_column(gdf, ["label", "name", "cluster", "cluster_id", "territory", "zone",
                                 "site_id"])
    numeric = [c for c in gdf.columns if c != "geometry" and pd.api.types.is_numeric_dtype(gdf[c])
               and c not in ("cluster", "cluster_id")][:3]
    tips = []
    for i, lab in enumerate(labels):
        parts = [f"{name[:-1] if name.endswith('s') else name} {lab}".strip()]
        parts += [f"{c.replace('_', ' ')} {format_value(gdf[c].iloc[i])}" for c in numeric
                  if pd.notna(gdf[c].iloc[i])]
        tips.append(" · ".join(parts))
    palette = colormaps["tab10"]
    styles = [{"fillColor": to_hex(palette(i % 10))} for i in range(len(gdf))]
    return folium.GeoJson(_features(gdf, {"tip": tips, "style": styles}), name=escape(name),
                          show=True, on_each_feature=_ON_EACH_FEATURE, color=colour, weight=1.5,
                          fill_opacity=0.18,
                          marker=folium.CircleMarker(radius=6, fill=True, fill_opacity=0.8))


def write_map(result: Any, path: Path, *, floorplans: Mapping[str, str] | None = None) -> None:
    """Save :func:`build_map` as one self-contained HTML file.

    Floor plans already in ``path``'s folder (``floorplans/<site_id>/``) are
    linked from the site popups unless ``floorplans`` is given.
    """
    path = Path(path)
    if floorplans is None:
        floorplans = floorplan_links(path.parent, list(result.selected["site_id"].astype(str)))
    build_map(result, floorplans=floorplans).save(str(path))
