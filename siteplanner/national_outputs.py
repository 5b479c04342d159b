"""Writing a national run's own files: the national ranking, the areas, a map, a report, national.json.

Each file is written beside its final name and renamed into place, so a
stopped run leaves the previous file or the new one, never half of one. The
per-area folders (``areas/<area>/``) are written as each area finishes, by
:mod:`siteplanner.national_run`. Nothing here computes a figure.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import folium
import pandas as pd
import shapely
from jinja2 import Environment

from siteplanner._assets import inline_script, inline_style, leaflet_css, leaflet_js
from siteplanner.maps import ATTRIBUTION, escape

__all__ = ["AREA_COLUMNS", "write_national_outputs"]

#: ``areas.csv``'s columns.
AREA_COLUMNS = ("area", "status", "seconds", "candidates", "sites", "error")
_OSM_HTML = ('&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors')


def _replace(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.part-{os.getpid()}")
    part.write_text(text, encoding="utf-8", newline="\n")
    part.replace(path)


def write_national_outputs(run: Any, out_dir: Path) -> list[Path]:
    """Write ``national_sites.csv``, ``areas.csv``, ``map.html``, ``report.html`` and ``national.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    areas = pd.DataFrame([{c: getattr(r, c) for c in AREA_COLUMNS} for r in run.rows],
                         columns=list(AREA_COLUMNS))
    files = {
        "national_sites.csv": run.sites.to_csv(index=False, lineterminator="\n"),
        "areas.csv": areas.to_csv(index=False, lineterminator="\n"),
        "map.html": _map_html(run),
        "report.html": _report_html(run, areas),
        "national.json": json.dumps(_record(run), indent=2, ensure_ascii=False, default=str) + "\n",
    }
    for name, text in files.items():
        _replace(out_dir / name, text)
    return [out_dir / n for n in files]


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _record(run: Any) -> dict[str, Any]:
    """``national.json``: what ran, on which cluster, how the areas went and how they were ranked."""
    return {
        "siteplanner": _version("siteplanner"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in ("dask", "distributed", "pyrosm", "geopandas")},
        "study": run.study.to_dict(),
        "split": run.split,
        "cluster": run.cluster,
        "ranking": run.ranking,
        "seconds": run.timings,
        "areas": [{"area": r.area, "folder": f"areas/{r.folder}", "key": r.key, "status": r.status,
                   "seconds": r.seconds, "candidates": r.candidates, "sites": r.sites,
                   "error": r.error or None,
                   "warnings": run.areas.get(r.folder, {}).get("warnings", [])} for r in run.rows],
    }


def _map_html(run: Any) -> str:
    """A small self-contained map: each area's outline and the national sites, numbered by rank."""
    outlines = {f: shapely.from_wkt(a["outline_wkt"]) for f, a in run.areas.items() if a.get("outline_wkt")}
    sites = run.sites
    shapes = [*outlines.values(), *shapely.points(sites["lon"].to_numpy(), sites["lat"].to_numpy())]
    w, s, e, n = shapely.total_bounds(shapes) if shapes else (-180.0, -60.0, 180.0, 75.0)
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], tiles=None, control_scale=True, max_zoom=19)
    m.default_js, m.default_css = [], []
    root = m.get_root()
    root.title = escape(f"{run.study.display_name}: top {len(sites)} sites nationally")  # type: ignore[attr-defined]
    root.header.add_child(folium.Element(inline_style(leaflet_css())), name="sp_css")  # type: ignore[attr-defined]
    root.header.add_child(folium.Element(inline_script(leaflet_js())), name="sp_leaflet")  # type: ignore[attr-defined]
    folium.TileLayer("OpenStreetMap", attr=_OSM_HTML, name="OpenStreetMap tiles (online)",
                     max_zoom=19).add_to(m)
    m.fit_bounds([[s, w], [n, e]])
    names = {r.folder: r.area for r in run.rows}
    areas = folium.FeatureGroup(name="Areas", show=True)
    for folder, geom in outlines.items():
        folium.GeoJson(shapely.geometry.mapping(geom), style_function=lambda _f: {
            "color": "#444", "weight": 1.5, "fill": False, "dashArray": "5 4"},
            tooltip=escape(names.get(folder, folder))).add_to(areas)
    areas.add_to(m)
    group = folium.FeatureGroup(name=escape(f"Top {len(sites)} sites nationally"), show=True)
    for row in sites.itertuples(index=False):  # K markers, K is a shortlist
        popup = (f"<b>#{int(row.rank)}</b> {escape(row.site_id)}<br>{escape(row.area)}"
                 f"<br>{escape(getattr(row, 'address', '') or '')}<br>national score {row.score:.3f}")
        folium.CircleMarker([row.lat, row.lon], radius=7, color="#fff", weight=2, fill=True,
                            fill_color="#f08c00", fill_opacity=0.95, popup=folium.Popup(popup, max_width=320),
                            tooltip=escape(f"#{int(row.rank)} {row.area}")).add_to(group)
    group.add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    return str(root.render())  # type: ignore[attr-defined]


_REPORT = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font:14px/1.45 sans-serif;max-width:60em;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:12px}
td,th{border-bottom:1px solid #ddd;padding:2px 6px;text-align:left}
td.n{text-align:right}.failed{color:#b00}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ areas_total }} areas ({{ split }}): {{ done }} computed, {{ cached }} from the cache,
{{ failed }} failed. The {{ k }} sites below are the best across all areas.</p>
<h2>How sites are compared across areas</h2>
<p>{{ method }}</p>
<h2>The national shortlist</h2>
<table><tr><th>rank</th><th>area</th><th>site</th><th>address</th><th>score (0-1)</th>
<th>rank in its area</th></tr>
{% for r in sites %}<tr><td class="n">{{ r.rank }}</td><td>{{ r.area }}</td><td>{{ r.site_id }}</td>
<td>{{ r.address }}</td><td class="n">{{ "%.3f"|format(r.score) }}</td>
<td class="n">{{ r.area_rank }}</td></tr>
{% endfor %}</table>
<h2>Areas</h2>
<table><tr><th>area</th><th>status</th><th>seconds</th><th>candidates</th><th>sites</th><th>error</th></tr>
{% for a in areas %}<tr class="{{ a.status }}">
<td><a href="areas/{{ a.folder }}/map.html">{{ a.area }}</a></td>
<td>{{ a.status }}</td><td class="n">{{ "%.1f"|format(a.seconds) }}</td><td class="n">{{ a.candidates }}</td>
<td class="n">{{ a.sites }}</td><td>{{ a.error }}</td></tr>
{% endfor %}</table>
<p>Each area's own ranking, table and map are in <code>areas/AREA/</code>; the run's provenance
(inputs, settings, cluster, memory limit per worker) is in <code>national.json</code>.
Map data {{ attribution }}.</p>
</body></html>
""")


def _report_html(run: Any, areas: pd.DataFrame) -> str:
    how = run.ranking
    if how.get("method") == "npv":
        method = ("Sites are ordered by their net present value (the business case), which is "
                  "comparable across areas as it is money.")
    else:
        method = ("Each area's own score is min-max normalised within that area, so it cannot be "
                  "compared across areas. Here every candidate of every area "
                  f"({how.get('candidates', 0):,} in all) is scored again from its raw criteria with one "
                  "min-max over all of them and the study's weights, and the spacing rule is applied "
                  f"once across the country: no site within {how.get('min_spacing_m', 0):.0f} m of another "
                  f"nor within {how.get('min_distance_to_own_m', 0):.0f} m of an own branch.")
    status = areas["status"].value_counts()
    rows = [{"area": r.area, "folder": r.folder, "status": r.status, "seconds": r.seconds,
             "candidates": r.candidates, "sites": r.sites, "error": r.error} for r in run.rows]
    sites = run.sites.assign(area_rank=run.sites.get("area_rank", pd.Series(dtype="Int64"))
                             .astype("string").fillna("-")) if len(run.sites) else run.sites
    return _REPORT.render(
        title=f"{run.study.display_name}: top {len(run.sites)} sites nationally",
        areas_total=len(run.rows), split=run.split.get("by", ""), done=int(status.get("done", 0)),
        cached=int(status.get("cached", 0)), failed=int(status.get("failed", 0)), k=len(run.sites),
        method=method, sites=sites.fillna("").to_dict("records"), areas=rows, attribution=ATTRIBUTION)
