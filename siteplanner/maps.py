"""The interactive folium map of a ranking run.

Every string that comes from data (OSM names, user files) goes through
:func:`escape` before it reaches folium: folium puts popup and tooltip HTML
inside JavaScript template literals, so plain HTML escaping is not enough
(a backtick or ``${`` would still break out).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import shapely

from siteplanner.config import CRITERIA

__all__ = ["ATTRIBUTION", "build_map", "escape", "write_map"]

ATTRIBUTION = "© OpenStreetMap contributors"
_JS_ENTITIES = {"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"}
MODE_COLOURS = {"rail": "#6a3d9a", "metro": "#ff7f00", "tram": "#33a02c", "bus": "#1f78b4"}


def escape(text: object) -> str:
    """HTML-escape ``text`` and neutralise the characters that end a JS template literal."""
    s = html.escape(str(text), quote=True)
    return "".join(_JS_ENTITIES.get(ch, ch) for ch in s)


def _popup_html(row: Any) -> str:
    rows = []
    for name in CRITERIA:
        c = float(row[f"{name}_contribution"])
        width = min(100.0, abs(c) * 200)
        colour = "#2b8a3e" if c >= 0 else "#c92a2a"
        rows.append(
            f"<tr><td>{escape(name)}</td><td style='text-align:right'>{row[name]:.2f}</td>"
            f"<td style='width:110px'><div style='background:{colour};height:8px;"
            f"width:{width:.0f}px'></div></td><td style='text-align:right'>{c:+.3f}</td></tr>")
    return (f"<b>Site #{int(row['rank'])}</b> &middot; {escape(row['site_id'])}<br>"
            f"score <b>{row['score']:.3f}</b><br>"
            "<table style='font-size:11px'><tr><th>criterion</th><th>raw</th><th></th>"
            "<th>part</th></tr>" + "".join(rows) + "</table>")


def build_map(result: Any) -> folium.Map:
    """A folium map: selected sites (numbered, with score breakdown), own branches,
    competitors, transit by mode, the study area and the streets as a vector base."""
    layers = result.layers
    area = layers.area.to_crs(4326)
    w, s, e, n = area.total_bounds
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], tiles=None, control_scale=True,
                   max_zoom=19, zoom_start=15)
    folium.TileLayer("OpenStreetMap", attr=ATTRIBUTION, name="OpenStreetMap").add_to(m)
    m.fit_bounds([[s, w], [n, e]])

    base = folium.FeatureGroup(name="Study area and streets", show=True)
    folium.GeoJson(area[["geometry"]].to_json(), style_function=lambda _f: {
        "color": "#555", "weight": 2, "fill": False, "dashArray": "4"}).add_to(base)
    if len(layers.streets):
        streets = gpd.GeoSeries(shapely.set_precision(
            layers.streets.geometry.simplify(1.0).values, 0.5), crs=layers.crs).to_crs(4326)
        folium.GeoJson(gpd.GeoDataFrame(geometry=streets).to_json(to_wgs84=True, drop_id=True),
                       style_function=lambda _f: {"color": "#999", "weight": 1}).add_to(base)
    base.add_to(m)

    def points(gdf: gpd.GeoDataFrame, name: str, colour: str, label_col: str) -> None:
        fg = folium.FeatureGroup(name=escape(name))
        g = gdf.to_crs(4326)
        for geom, label in zip(g.geometry, g[label_col].fillna(""), strict=True):
            folium.CircleMarker([geom.y, geom.x], radius=6, color=colour, fill=True,
                                fill_opacity=0.9, tooltip=escape(label) or None).add_to(fg)
        fg.add_to(m)

    own_name = " / ".join(result.study.brand)
    points(layers.own_branches, f"Own branches ({own_name})", "#0b7285", "label")
    points(layers.competitors, "Competitors", "#c92a2a", "label")
    transit = layers.transit.assign(tip=layers.transit["mode"].astype(str) + ": "
                                    + layers.transit.get("name", "").fillna("").astype(str))
    for mode in sorted(transit["mode"].unique()):
        fg = folium.FeatureGroup(name=escape(f"Transit: {mode}"), show=mode != "bus")
        g = transit[transit["mode"] == mode].to_crs(4326)
        for geom, tip in zip(g.geometry, g["tip"], strict=True):
            folium.CircleMarker([geom.y, geom.x], radius=3, color=MODE_COLOURS.get(mode, "#444"),
                                fill=True, tooltip=escape(tip)).add_to(fg)
        fg.add_to(m)

    sel = folium.FeatureGroup(name="Selected sites")
    g = result.selected.to_crs(4326)
    for (_, row), geom in zip(g.iterrows(), g.geometry, strict=True):
        icon = folium.DivIcon(html=(
            "<div style='background:#f08c00;color:#fff;border:2px solid #fff;border-radius:50%;"
            "width:24px;height:24px;line-height:20px;text-align:center;font:bold 12px sans-serif;"
            f"box-shadow:0 0 3px #000'>{int(row['rank'])}</div>"), icon_size=(24, 24),
            icon_anchor=(12, 12), class_name="site-marker")
        folium.Marker([geom.y, geom.x], icon=icon,
                      popup=folium.Popup(_popup_html(row), max_width=360)).add_to(sel)
    sel.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    title = (f"<div style='position:fixed;top:10px;left:50px;z-index:9999;background:#fff;"
             f"padding:6px 10px;border-radius:4px;box-shadow:0 0 4px #888;font:14px sans-serif'>"
             f"<b>{escape(result.study.name)}</b>: top {len(result.selected)} sites for "
             f"{escape(own_name)}<br><small>foot traffic: "
             f"{'measured counts' if result.foot_traffic_measured else 'OSM proxy'}"
             f" &middot; data {escape(result.data_date or 'date unknown')}"
             f" &middot; {ATTRIBUTION}</small></div>")
    m.get_root().html.add_child(folium.Element(title))  # type: ignore[attr-defined]
    return m


def write_map(result: Any, path: Path) -> None:
    """Save :func:`build_map` as a single HTML file."""
    build_map(result).save(str(path))
