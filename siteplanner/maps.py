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

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template as FoliumTemplate
from folium.utilities import JsCode
from jinja2 import Template

from siteplanner._assets import (
    heat_js,
    inline_script,
    inline_style,
    leaflet_css,
    leaflet_js,
    whatif_css,
    whatif_js,
)
from siteplanner._display import (
    COMPETITOR_COLOUR,
    HEAT_GRADIENT,
    IMPACT_FIELDS,
    MODE_COLOURS,
    OWN_COLOUR,
    SITE_COLOUR,
    criteria_of,
    format_value,
    present,
    signed,
)
from siteplanner._fs import safe_component
from siteplanner._map_budget import (
    STOPS_NEAR_M,
    heat_points,
    simplified,
    stops_near,
)
from siteplanner._map_streets import map_street_lines
from siteplanner._whatif import whatif_data, whatif_json

__all__ = ["ATTRIBUTION", "SCORE_RAMP", "ZONE_FILLS", "build_map", "escape", "floorplan_links", "write_map"]

ATTRIBUTION = "© OpenStreetMap contributors"
#: The score ramp of the candidate cells: matplotlib's ``YlGnBu`` (ColorBrewer's yellow-green-blue,
#: colorbrewer2.org, Cynthia Brewer) at ``0.12 + 0.88 t`` for eleven even ``t`` from 0 to 1, as
#: ``matplotlib.colors.to_hex`` writes it (its palest end left out so a low score still shows
#: on the tiles). Listed, so writing a map imports no matplotlib; ``SCORE_CMAP`` names the
#: colormap, and tests/test_map.py checks the list against matplotlib.
SCORE_RAMP = ("#eef8b3", "#d4eeb3", "#aedfb6", "#7acbbc", "#50bbc2", "#2fa4c2", "#1e88bc",
              "#2163aa", "#24459c", "#1c2d81", "#081d58")
#: The fills of zone layers (clusters, territories) in turn: matplotlib's ``tab10`` (Tableau 10).
ZONE_FILLS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
              "#7f7f7f", "#bcbd22", "#17becf")
_ATTRIBUTION_HTML = ('&copy; <a href="https://www.openstreetmap.org/copyright">'
                     "OpenStreetMap</a> contributors")
_JS_ENTITIES = {"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"}
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


def _within(row: Mapping[str, Any], prefix: str) -> tuple[float, str] | None:
    """``(count, minutes)`` from a ``<prefix>_within_<N>min`` column of ``row``."""
    for col in row:
        if isinstance(col, str) and col.startswith(f"{prefix}_within_") and present(row, col):
            return float(row[col]), col[len(prefix) + 8:-3]
    return None


def _plain(name: str, row: Mapping[str, Any], share_below: float, measured: bool) -> str:
    """One criterion of one site in words and units, not as a kernel sum."""
    pct = f"{share_below:.0%} of candidate sites"
    if name == "foot_traffic":
        if measured and present(row, name):
            return f"about {float(row[name]):,.0f} counted (interpolated from the nearest counters)"
        return f"busier than {pct} (OSM proxy: shops and stops nearby)"
    if name == "transit":
        walks = [f"{col[9:]} {float(row[col]):.0f} min" for col in sorted(row)
                 if isinstance(col, str) and col.startswith("walk_min_") and present(row, col)]
        stops = _within(row, "stops")
        parts = ([", ".join(walks) + " walk to the nearest stop"] if walks else [])
        parts += [f"{stops[0]:.0f} stops within a {stops[1]}-minute walk"] if stops else []
        return "; ".join(parts) or f"better served than {pct}"
    words = {"commercial": ("pois", "shops and services"),
             "competition": ("competitors", "competitor branches"),
             "cannibalization": ("own", "own branches")}
    counted = _within(row, words[name][0]) if name in words else None
    if counted is None:
        return f"higher than at {pct}"
    text = f"{counted[0]:.0f} {words[name][1]} within a {counted[1]}-minute walk"
    if name == "cannibalization" and present(row, "nearest_own_m") \
            and np.isfinite(float(row["nearest_own_m"])):
        text += f"; nearest own branch {float(row['nearest_own_m']):,.0f} m"
    return text


def _popup_html(row: Mapping[str, Any], criteria: Sequence[str], floorplan: str | None, *,
                below: Mapping[str, float], measured: bool, place: str,
                checks: Sequence[tuple[str, bool]] = ()) -> str:
    rows = []
    for name in criteria:
        c = float(row[f"{name}_contribution"])
        width = min(100.0, abs(c) * 200)
        colour = "#2b8a3e" if c >= 0 else "#c92a2a"
        rows.append(
            f"<tr><td>{escape(name.replace('_', ' '))}</td>"
            f"<td>{escape(_plain(name, row, below.get(name, 0.0), measured))}</td>"
            f"<td style='width:64px'><div class='bar' style='background:{colour};"
            f"width:{width * 0.6:.0f}px'></div></td><td style='text-align:right'>{signed(c)}</td></tr>")
    impact = "".join(
        f"<tr><td colspan='3'>{escape(label)}</td><td style='text-align:right'>"
        f"{escape(format_value(row[col], kind))}</td></tr>"
        for col, (label, kind) in IMPACT_FIELDS.items() if present(row, col))
    link = (f"<br><a href='{escape(floorplan)}' target='_blank'>floor plan</a>"
            if floorplan else "")
    if checks:  # the siting rules, one mark each (compliance.csv)
        link += "<br>rules: " + ", ".join(f"{escape(r.replace('_', ' '))} {'✓' if ok else '✗'}"
                                          for r, ok in checks)
    return (f"<div class='sp-pop'><b>Site #{int(row['rank'])}</b> &middot; {escape(place)}"
            f"<br><small>{escape(row['site_id'])}</small><br>score <b>{float(row['score']):.3f}</b>"
            " (parts below add up to it)"
            "<table><tr><th>criterion</th><th>at this site</th><th></th><th>part</th></tr>"
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


def _points_layer(gdf: gpd.GeoDataFrame, name: str, colour: str, tips: Sequence[str], *,
                  radius: float, show: bool = True) -> folium.GeoJson:
    """Points with a text tooltip each; on by default only for the branches themselves."""
    data = _features(gdf, {"tip": tips})
    return folium.GeoJson(
        data, name=escape(name), show=show, on_each_feature=_ON_EACH_FEATURE,
        marker=folium.CircleMarker(radius=radius, color="#fff", weight=1, fill=True,
                                   fill_color=colour, fill_opacity=0.95))


def floorplan_links(out_dir: Path, site_ids: Sequence[str]) -> dict[str, str]:
    """Relative links to each site's floor plan found under ``out_dir/floorplans/<site_id>/``.

    A drawn plan (``plan.svg``) is linked directly; a plan given only as zones
    (``zones.geojson``) links to the site's card in ``report.html``, where it is drawn.
    """
    links: dict[str, str] = {}
    for sid in site_ids:
        name = safe_component(str(sid))
        folder = out_dir / "floorplans" / name
        if (folder / "plan.svg").is_file():
            links[str(sid)] = f"floorplans/{name}/plan.svg"
        elif (folder / "zones.geojson").is_file():
            links[str(sid)] = f"report.html#site-{sid}"
    return links


def _legend(entries: list[tuple[str, Any, bool]], ramp: list[str] | None, heat: bool) -> str:
    """A swatch per layer as drawn: one per colour for a layer drawn in several."""
    rows = []
    if ramp is not None:
        rows.append("<div><b>Candidate score</b> (H3 cells; larger hexagons at low zoom show the"
                    " mean of their cells)</div>"
                    f"<div class='ramp' style='background:linear-gradient(to right, {', '.join(ramp)})'>"
                    "</div><div class='ends'><span>lowest</span><span>highest</span></div>")
    if heat:
        stops = ", ".join(HEAT_GRADIENT.values())
        rows.append("<div><b>Foot traffic</b> (heat)</div>"
                    f"<div class='ramp' style='background:linear-gradient(to right, #fff0, {stops})'>"
                    "</div><div class='ends'><span>low</span><span>high</span></div>")
    for label, colour, dot in entries:
        cls = "sw dot" if dot else "sw"
        colours = colour if isinstance(colour, list | tuple) else [colour]
        swatches = "".join(f"<span class='{cls}' style='background:{c}'></span>" for c in colours)
        rows.append(f"<div class='entry'>{swatches}{escape(label)}</div>")
    return "<div class='sp-box sp-legend'>" + "".join(rows) + "</div>"


def build_map(result: Any, *, floorplans: Mapping[str, str] | None = None) -> folium.Map:
    """The leadership map of a ranking run, with every script and style inlined.

    By default it shows the chosen sites (numbered), the own branches, the
    competitors and the score cells; foot traffic, transit by mode,
    catchments, clusters and territories are one click away in the layer
    list. The what-if panel re-ranks in the page (see :mod:`siteplanner.rescore`).

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
    layers = result.layers
    m = _base_map(result)
    legend: list[tuple[str, Any, bool]] = []
    cells = folium.FeatureGroup(name="Candidate score (H3 cells)", show=True).add_to(m)
    heat = _foot_traffic_layers(result, m, legend)
    stops, near = stops_near(layers.transit, result.selected.to_crs(layers.crs))
    _transit_layers(stops, m, legend, near=near)
    _area_layers(result, m, legend)
    own_name = " / ".join(result.study.brand)
    for gdf, label, colour in ((layers.competitors, "Competitors", COMPETITOR_COLOUR),
                               (layers.own_branches, f"Own branches ({own_name})", OWN_COLOUR)):
        if len(gdf):
            tips = list(_label_column(gdf, ["label", "name"]))
            _points_layer(gdf, label, colour, tips, radius=6).add_to(m)
            legend.append((label, colour, True))
    sel = result.selected
    sites = folium.FeatureGroup(name="Selected sites (numbered by rank)", show=True).add_to(m)
    legend.insert(0, (f"Selected site (rank 1 to {len(sel)})", SITE_COLOUR, True))
    folium.LayerControl(collapsed=False).add_to(m)
    data_date = result.data_date or "date unknown"
    title = (f"<div class='sp-box sp-title'><b>{escape(result.study.display_name)}</b><br>"
             f"Top {len(sel)} new sites for {escape(own_name)}<br>"
             f"<small>OSM data {escape(data_date[:10])} &middot; foot traffic: "
             f"{'measured counts' if result.foot_traffic_measured else 'OSM proxy'}"
             f" &middot; {escape(ATTRIBUTION)}</small></div>")
    ramp = list(SCORE_RAMP)
    data = whatif_data(result, popups=_site_popups(result, dict(floorplans or {})), ramp=ramp)
    root = m.get_root()
    root.html.add_child(_Html(  # type: ignore[attr-defined]
        title + _legend(legend, ramp if len(result.candidates) else None, heat)
        + _whatif_panel(result, data)
        + f"<script type='application/json' id='sp-whatif-data'>{whatif_json(data)}</script>"))
    _Script(whatif_js() + f"\nspWhatifStart({m.get_name()}, {cells.get_name()}, "
            f"{sites.get_name()});\n").add_to(m)
    return m


class _Html(Element):
    """Markup that goes into the page as it is, never read as a jinja template.

    ``folium.Element(markup)`` compiles its text as a template, which for the
    what-if panel with its data (a country's candidates) cost a quarter of a
    second of lexing; the text is the same but for the one trailing newline
    jinja drops, which is dropped here too.
    """

    def __init__(self, markup: str) -> None:
        super().__init__()
        self._name = "SpHtml"
        self.markup = markup.removesuffix("\n")

    def render(self, **kwargs: Any) -> str:
        """The markup itself."""
        return self.markup


class _Heat(Layer):
    """A Leaflet.heat layer (the script is inlined in the page's head) of ``[lat, lon, weight]`` rows.

    The layer ``folium.plugins.HeatMap`` draws, without importing ``folium.plugins``
    (every plugin's templates, a quarter of a second of a country run) or checking
    each point in Python: the rows here are finite, rounded coordinates already.
    ``options`` are Leaflet.heat's, in snake case (``min_opacity`` is ``minOpacity``).
    """

    _template = FoliumTemplate(
        "{% macro script(this, kwargs) %}\n"
        "    var {{ this.get_name() }} = L.heatLayer(\n"
        "        {{ this.data|tojson }},\n"
        "        {{ this.options|tojavascript }}\n"
        "    );\n"
        "{% endmacro %}")

    def __init__(self, data: list[list[float]], *, name: str, show: bool,
                 options: dict[str, Any]) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "HeatMap"
        self.data = data
        self.options = options


class _Script(MacroElement):
    """Inline code that runs after every layer above it was created (no data inside)."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "SpWhatif"
        self.code = code


def _whatif_panel(result: Any, data: Mapping[str, Any]) -> str:
    """The panel's frame; the script fills in the sliders, the ranking and the command line."""
    study = result.study
    sel = study.selection
    if data["live"]:
        note = (f"Moving a slider scores all {data['n']:,} candidate sites again and re-applies the"
                f" rule: the top {sel.top_k}, at least {sel.min_spacing_m:,.0f} m apart and"
                f" {sel.min_distance_to_own_m:,.0f} m from an own branch, as the CLI does. The page"
                " address holds the scenario: copy it to share it.")
        if data["rounded"]:
            note += (" To keep the file small, this large study's "
                     + ", ".join(r.replace("_", " ") for r in data["rounded"])
                     + " values are stored to 1 part in 65,535: sites whose scores differ by less"
                     " than that may swap places.")
        notes = f"<div class='wi-note'>{escape(note)}</div>"
    else:
        how = " and ".join(data["cliOptions"])
        notes = (f"<div class='wi-note warn'>This run chose its sites with {escape(how)}; re-ranking"
                 " it with other weights needs the CLI. Set the weights here and run the command"
                 " below.</div>")
    return ("<div class='sp-box sp-whatif' id='sp-whatif'><details open><summary>"
            "What if the weights were different?</summary><div id='sp-sliders'></div>"
            "<button type='button' id='sp-reset'>Reset to the study's weights</button>"
            f"{notes}<ol id='whatif-ranking'></ol>"
            f"<div class='wi-note'>The same in the CLI ({escape(study.display_name)}):</div>"
            "<code id='sp-cli'></code></details></div>")


def _site_popups(result: Any, floorplans: Mapping[str, str]) -> dict[str, str]:
    """The chosen sites' popups in plain words, keyed by site id."""
    sel, cands = result.selected, result.candidates
    crit = criteria_of(sel)
    below = {}
    for name in crit:
        if name in cands:
            values = np.sort(cands[name].to_numpy(dtype=float))
            below[name] = dict(zip(sel["site_id"].astype(str), np.searchsorted(
                values, sel[name].to_numpy(dtype=float)) / max(len(values), 1), strict=True))
    records = sel.drop(columns=[c for c in ("geometry", "cell") if c in sel]).to_dict("records")
    checks: dict[str, list[tuple[str, bool]]] = {}
    compliance = getattr(result, "compliance", None)
    for row in ([] if compliance is None else compliance.itertuples()):
        checks.setdefault(str(row.site_id), []).append((str(row.rule), bool(row.passes)))
    out = {}
    for r in records:
        sid = str(r["site_id"])
        place = str(r["address"]) if present(r, "address") and str(r["address"]) else sid
        out[sid] = _popup_html(r, crit, floorplans.get(sid), measured=bool(result.foot_traffic_measured),
                               below={k: v[sid] for k, v in below.items()}, place=place,
                               checks=checks.get(sid, []))
    return out


def _base_map(result: Any) -> folium.Map:
    """The map with Leaflet inlined, online tiles and the offline base (study area, streets)."""
    layers = result.layers
    area = layers.area.to_crs(4326)
    w, s, e, n = area.total_bounds
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], tiles=None, control_scale=True,
                   max_zoom=19, zoom_start=15, prefer_canvas=False)
    m.default_js, m.default_css = [], []
    root = m.get_root()
    root.title = escape(f"{result.study.display_name}: top {len(result.selected)} sites")  # type: ignore[attr-defined]
    root.header.add_child(_Html(  # type: ignore[attr-defined]
        inline_style(leaflet_css() + _CSS + whatif_css())), name="sp_css")  # type: ignore[attr-defined]
    root.header.add_child(_Html(inline_script(leaflet_js())), name="sp_leaflet")  # type: ignore[attr-defined]
    root.header.add_child(_Html(inline_script(heat_js())), name="sp_heat")  # type: ignore[attr-defined]
    folium.TileLayer("OpenStreetMap", attr=_ATTRIBUTION_HTML, name="OpenStreetMap tiles (online)",
                     max_zoom=19).add_to(m)
    m.fit_bounds([[s, w], [n, e]])
    lines, left_out = map_street_lines(layers.streets)  # drawn ahead, where it was
    name = "Study area and streets (offline base" + (f", {left_out})" if left_out else ")")
    base = folium.FeatureGroup(name=escape(name), show=True)
    folium.GeoJson(_features(area, {}), style_function=lambda _f: {
        "color": "#444", "weight": 2, "fill": False, "dashArray": "5 4"},
        attribution=_ATTRIBUTION_HTML).add_to(base)
    if len(lines):
        streets = gpd.GeoDataFrame(geometry=lines, crs=layers.crs)
        folium.GeoJson(_features(streets, {}), style_function=lambda _f: {
            "color": "#8a8a8a", "weight": 1.2, "opacity": 0.9}).add_to(base)
    base.add_to(m)
    return m


def _foot_traffic_layers(result: Any, m: folium.Map, legend: list[tuple[str, Any, bool]]) -> bool:
    """The foot-traffic heat map (and measured counters); True when there was any."""
    measured = bool(result.foot_traffic_measured)
    pts = result.foot_traffic_points
    if pts is None or not len(pts):
        return False
    xy, wts, cell = heat_points(np.column_stack([pts.geometry.x, pts.geometry.y]),
                                pts["count"].to_numpy(dtype=float))
    g = gpd.GeoSeries(shapely.points(xy), crs=pts.crs).to_crs(4326)
    wts = wts / wts.max() if wts.max() > 0 else np.ones(len(wts))
    data = np.column_stack([np.round(g.y, _DECIMALS), np.round(g.x, _DECIMALS),
                            np.round(wts, 3)])
    label = "Foot traffic: " + ("measured counts" if measured else "OSM proxy (shops, stops)")
    if cell is not None:
        label += f", summed on a {cell:,.0f} m grid"
    _Heat(data.tolist(), name=escape(label), show=False, options={
        "min_opacity": 0.25, "max_zoom": 18, "radius": 22, "blur": 18, "gradient": HEAT_GRADIENT,
    }).add_to(m)
    if measured:
        names = _label_column(pts, ["name", "label", "id"])
        tips = [f"{nm + ': ' if nm else ''}{c:,.0f} counted" for nm, c in
                zip(names, pts["count"].to_numpy(dtype=float), strict=True)]
        _points_layer(pts, "Foot-traffic counters", "#7f0000", tips, radius=5, show=False).add_to(m)
        legend.append(("Foot-traffic counter", "#7f0000", True))
    return True


def _transit_layers(transit: gpd.GeoDataFrame, m: folium.Map,
                    legend: list[tuple[str, Any, bool]], *, near: bool = False) -> None:
    """One layer of stops per transit mode, each off by default and one click away
    (``near``: only the stops near the chosen sites are drawn, and the name says so)."""
    if not len(transit):
        return
    stop_names = _label_column(transit, ["name"])
    for mode in sorted(transit["mode"].astype(str).unique()):
        sel = (transit["mode"].astype(str) == mode).to_numpy()
        colour = MODE_COLOURS.get(mode, "#444")
        tips = [f"{mode} stop{': ' + nm if nm else ''}" for nm in stop_names[sel]]
        where = f" (within {STOPS_NEAR_M:,.0f} m of a chosen site)" if near else ""
        _points_layer(transit[sel], f"Transit: {mode}{where}", colour, tips, radius=4,
                      show=False).add_to(m)
        legend.append((f"Transit: {mode}", colour, True))


def _area_layers(result: Any, m: folium.Map, legend: list[tuple[str, Any, bool]]) -> None:
    """Catchments, opportunity clusters and territories, when the run made them."""
    rank_of = dict(zip(result.selected["site_id"].astype(str),
                       result.selected["rank"].astype(int), strict=True))
    extent = result.layers.area.total_bounds
    catch = result.catchments
    if catch is not None and len(catch):
        drawn = simplified(catch, extent=extent)
        layer = _catchments_layer(drawn, rank_of)
        layer.layer_name = escape("Catchments (walk time" + _coarser(drawn) + ")")
        layer.add_to(m)
        legend.append(("Catchment (walk time)", "#5f3dc4", False))
    for attr, label, colour in (("clusters", "Opportunity clusters", "#e8590c"),
                                ("territories", "Territories", "#495057")):
        gdf = getattr(result, attr, None)
        if gdf is not None and len(gdf):
            drawn = simplified(gdf, extent=extent)
            layer, fills = _zones_layer(drawn, label, colour)
            if _coarser(drawn):
                layer.layer_name = escape(f"{label} ({_coarser(drawn).removeprefix(', ')})")
            layer.add_to(m)
            legend.append((label, fills, False))


def _coarser(drawn: gpd.GeoDataFrame) -> str:
    """``", outlines to N m"`` for outlines drawn coarser than a city's 2 m, else ``""``."""
    tol = float(drawn.attrs.get("simplified_m", 2.0))
    return f", outlines to {tol:,.0f} m" if tol > 2.0 else ""


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
                          show=False, on_each_feature=_ON_EACH_FEATURE, color="#5f3dc4", weight=1,
                          fill_color="#7950f2")


def _zones_layer(gdf: gpd.GeoDataFrame, name: str, colour: str) -> tuple[folium.GeoJson, list[str]]:
    """Zones filled in up to ten colours (returned for the legend), off by default."""
    labels = _label_column(gdf, ["label", "name", "cluster", "cluster_id", "territory", "zone",
                                 "site_id"])
    numeric = [c for c in gdf.columns if c != "geometry" and pd.api.types.is_numeric_dtype(gdf[c])
               and c not in ("cluster", "cluster_id")][:3]
    tips = []
    values = {c: gdf[c].array for c in numeric}  # what .iloc[i] reads, without its overhead
    for i, lab in enumerate(labels):
        parts = [f"{name[:-1] if name.endswith('s') else name} {lab}".strip()]
        parts += [f"{c.replace('_', ' ')} {format_value(values[c][i])}" for c in numeric
                  if pd.notna(values[c][i])]
        tips.append(" · ".join(parts))
    fills = list(ZONE_FILLS[:min(len(gdf), 10)])
    styles = [{"fillColor": fills[i % 10]} for i in range(len(gdf))]
    return folium.GeoJson(_features(gdf, {"tip": tips, "style": styles}), name=escape(name),
                          show=False, on_each_feature=_ON_EACH_FEATURE, color=colour, weight=1.5,
                          fill_opacity=0.18,
                          marker=folium.CircleMarker(radius=6, fill=True, fill_opacity=0.8)), fills


def write_map(result: Any, path: Path, *, floorplans: Mapping[str, str] | None = None) -> None:
    """Save :func:`build_map` as one self-contained HTML file.

    Floor plans already in ``path``'s folder (``floorplans/<site_id>/``) are
    linked from the site popups unless ``floorplans`` is given.
    """
    path = Path(path)
    if floorplans is None:
        floorplans = floorplan_links(path.parent, list(result.selected["site_id"].astype(str)))
    build_map(result, floorplans=floorplans).save(str(path))
