"""The shared map.html: self-contained, small, escaped, and drawing what the run has."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest

from siteplanner._display import format_value, signed
from siteplanner.maps import build_map, escape, write_map

XSS = "<img src=x onerror=alert(1)>"
TICKS = "`${alert(2)}`"
SCRIPT_END = "</script><script>alert(3)</script>"


def hostile_result(result: Any, *, k: int | None = None) -> Any:
    """``result`` with script-like names wherever data strings reach the page.

    The competitors and a transit stop carry the three payloads, the study's
    name and brand too, and the best site's id (and address) ends a script element.
    ``k`` keeps only the first k selected sites (a cheaper report).
    """
    layers = result.layers
    comp = layers.competitors.copy()
    for i, payload in enumerate((XSS, TICKS, SCRIPT_END)):
        comp.loc[comp.index[i], "label"] = payload
    transit = layers.transit.copy()
    transit["name"] = transit["name"].astype(object)
    transit.loc[transit.index[0], "name"] = TICKS
    transit.loc[transit.index[1], "name"] = XSS
    sel = result.selected.iloc[:k].copy() if k else result.selected.copy()
    sel["site_id"] = sel["site_id"].astype(object)
    sel.loc[sel.index[0], "site_id"] = SCRIPT_END
    cands = result.candidates.copy()
    cands["site_id"] = cands["site_id"].astype(object)
    cands.loc[sel.index[0], "site_id"] = SCRIPT_END
    for frame in (sel, cands):  # where a site is named by its address, the address carries it
        if "address" in frame:
            frame["address"] = frame["address"].astype(object)
            frame.loc[sel.index[0], "address"] = SCRIPT_END
    if k:
        cands.loc[~cands.index.isin(sel.index), "rank"] = np.nan
    study = replace(result.study, name=f"Study {XSS}", brand=(TICKS,))
    return replace(result, study=study, layers=replace(layers, competitors=comp, transit=transit),
                   selected=sel, candidates=cands)


def _layer_data(html: str) -> list[dict[str, Any]]:
    """Every GeoJSON collection embedded in the page."""
    out = []
    for m in re.finditer(r"_add\((\{\"features\".*?\})\);\n", html):
        out.append(json.loads(m.group(1)))
    return out


def _layer_names(html: str) -> list[str]:
    """The overlay names the layer control lists, in order."""
    return [json.loads(n) for n in re.findall(r'^\s*("[^"\n]*") : \w+_[0-9a-f]{20,},\s*$', html,
                                              flags=re.M)]


@pytest.fixture(scope="module")
def demo_map(demo_result, tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("map") / "map.html"
    write_map(demo_result, path)
    return path, path.read_text(encoding="utf-8")


def test_the_map_links_no_script_or_style_from_the_network(demo_map):
    _, html = demo_map
    assert not re.search(r"<script[^>]*\bsrc=", html, flags=re.I)
    assert not re.search(r"<link[^>]*\bhref=[\"']?(https?:)?//", html, flags=re.I)
    assert not re.search(r"@import|url\((['\"]?)(https?:)?//", html)
    # The inlined Leaflet keeps its licence header.
    assert "Leaflet 1.9.4, a JS library for interactive maps" in html
    assert "(c) 2010-2023 Vladimir Agafonkin" in html
    assert "url(images/" not in html
    assert "sourceMappingURL" not in html


def test_the_demo_map_is_small(demo_map):
    path, _ = demo_map
    assert path.stat().st_size < 5_000_000
    print(f"map.html {path.stat().st_size / 1e6:.2f} MB")


def whatif_doc(html: str) -> dict[str, Any]:
    """The what-if panel's data document embedded in the page."""
    m = re.search(r"<script type='application/json' id='sp-whatif-data'>(.*?)</script>", html, flags=re.S)
    assert m, "the page holds no what-if data"
    return json.loads(m.group(1))


def test_every_selected_site_has_its_breakdown_in_plain_words(demo_map, demo_result):
    _, html = demo_map
    doc = whatif_doc(html)
    k = len(demo_result.selected)
    assert len(doc["base"]) == k and len(doc["popups"]) == k
    first = doc["popups"][str(doc["base"][0])]
    assert "Site #1" in first and demo_result.selected["site_id"].iloc[0] in first
    for name in ("foot traffic", "transit", "commercial", "competition", "cannibalization"):
        assert name in first
    row = demo_result.selected.iloc[0]
    assert f"{int(row['pois_within_5min'])} shops and services within a 5-minute walk" in first
    assert f"{int(row['competitors_within_5min'])} competitor branches within a 5-minute walk" in first
    assert "min walk to the nearest stop" in first
    # no kernel sum is shown as a figure
    assert f"{float(row['commercial']):.2f}" not in first


def test_candidates_travel_once_as_columns(demo_map, demo_result):
    _, html = demo_map
    doc = whatif_doc(html)
    n = len(demo_result.candidates)
    assert doc["n"] == n and doc["enc"] == "f64" and doc["rounded"] == []
    assert [c["t"] for c in doc["crit"]] == ["f64"] * len(doc["names"])
    assert [len(base64.b64decode(c["v"])) for c in doc["crit"]] == [8 * n] * len(doc["names"])
    # no cell is a GeoJSON feature with repeated keys any more
    assert sum(len(fc["features"]) for fc in _layer_data(html)) < n


def test_the_layers_are_switchable_and_named(demo_map, demo_result):
    names = _layer_names(demo_map[1])
    for expected in ("Study area and streets (offline base)", "Candidate score (H3 cells)",
                     "Foot traffic: OSM proxy (shops, stops)", "Transit: bus", "Transit: tram",
                     "Transit: metro", "Competitors", "Own branches (Nordea)",
                     "Selected sites (numbered by rank)"):
        assert expected in names
    for attr, name in (("catchments", "Catchments (walk time)"), ("clusters", "Opportunity clusters"),
                       ("territories", "Territories")):
        part = getattr(demo_result, attr)
        assert (name in names) == (part is not None and len(part) > 0), name


def test_the_legend_scale_title_date_and_credit_are_on_the_map(demo_map):
    _, html = demo_map
    assert "sp-legend" in html and "Candidate score" in html
    assert "L.control.scale()" in html
    assert "Helsinki city centre" in html and "2019-04-21" in html
    assert "OpenStreetMap contributors" in html


def _with_optional_parts(result: Any) -> Any:
    sel = result.selected.copy()
    sel["expected_demand"] = np.linspace(1200, 800, len(sel))
    sel["net_new_demand"] = np.linspace(700, 300, len(sel))
    sel["stability"] = np.linspace(1.0, 0.5, len(sel))
    sel["walk_min_metro"] = np.linspace(3.24, 9.0, len(sel))
    sel["stops_within_5min"] = np.arange(len(sel)) + 4
    rows = []
    for sid, geom in zip(sel["site_id"], sel.geometry, strict=True):
        rows += [{"site_id": sid, "minutes": 5, "geometry": geom.buffer(300)},
                 {"site_id": sid, "minutes": 10, "geometry": geom.buffer(600)}]
    catch = gpd.GeoDataFrame(rows, geometry="geometry", crs=sel.crs)
    cells = result.candidates.set_geometry("cell")
    top = cells.sort_values("score", ascending=False).head(60)
    clusters = gpd.GeoDataFrame({"cluster": [1, 2], "score": [0.3, 0.2]}, geometry=[
        top.iloc[:30].union_all().convex_hull, top.iloc[30:].union_all().convex_hull],
        crs=sel.crs)
    return replace(result, selected=sel, catchments=catch, clusters=clusters)


def test_optional_parts_are_drawn_when_the_run_has_them(demo_result, tmp_path):
    result = _with_optional_parts(demo_result)
    sid = str(result.selected["site_id"].iloc[0])
    plan = tmp_path / "floorplans" / sid / "plan.svg"
    plan.parent.mkdir(parents=True)
    plan.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    write_map(result, tmp_path / "map.html")
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    names = _layer_names(html)
    assert "Catchments (walk time)" in names and "Opportunity clusters" in names
    doc = whatif_doc(html)
    popups = [doc["popups"][str(r)] for r in doc["base"]]
    assert "Expected demand" in popups[0] and "1,200" in popups[0]
    assert "Net-new demand" in popups[0] and "100%" in popups[0]
    assert f"floorplans/{sid}/plan.svg" in popups[0]
    assert "metro 3 min" in popups[0] and "walk to the nearest stop" in popups[0]
    assert "4 stops within a 5-minute walk" in popups[0]
    assert "floor plan" not in popups[1]
    tips = [f["properties"].get("tip", "") for fc in _layer_data(html) for f in fc["features"]]
    assert f"site #1 {sid}: 10-minute walk" in tips


def test_hostile_names_never_reach_the_page_as_markup(demo_result, demo_map):
    clean = demo_map[1]
    html = build_map(hostile_result(demo_result)).get_root().render()
    assert "Own branches (&#96;&#36;&#123;alert(2)&#125;&#96;)" in _layer_names(html)
    assert XSS not in html
    assert "</script><script>alert(3)" not in html
    assert html.lower().count("<script") == clean.lower().count("<script")
    # The names are still there for people to read, as escaped text.
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html  # tooltip data
    assert escape(TICKS) in html  # layer name and title


def test_escape_turns_markup_and_template_characters_into_entities():
    assert escape(XSS) == "&lt;img src=x onerror=alert(1)&gt;"
    assert escape(TICKS) == "&#96;&#36;&#123;alert(2)&#125;&#96;"
    assert escape("a\\b 'c' \"d\"") == "a&#92;b &#x27;c&#x27; &quot;d&quot;"


def test_parts_that_round_to_zero_show_no_minus_sign():
    assert signed(-0.0001) == "+0.000"
    assert signed(-0.07) == "-0.070" and signed(0.2981) == "+0.298"


def test_figures_read_naturally():
    assert format_value(62) == "62" and format_value(5559) == "5,559"
    assert format_value(1520.4) == "1,520" and format_value(0.41, "share") == "41%"
    assert format_value(float("nan")) == "–" and format_value(2.345) == "2.35"


def test_the_listed_colour_ramps_are_matplotlibs():
    """The map lists its colours so writing it needs no matplotlib; they must stay matplotlib's."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from siteplanner._display import SCORE_CMAP
    from siteplanner.maps import SCORE_RAMP, ZONE_FILLS

    cmap = colormaps[SCORE_CMAP]
    assert list(SCORE_RAMP) == [to_hex(cmap(0.12 + 0.88 * t)) for t in np.linspace(0, 1, 11)]
    assert list(ZONE_FILLS) == [to_hex(colormaps["tab10"](i)) for i in range(10)]


def test_writing_a_map_imports_no_matplotlib():
    """matplotlib costs a country run a third of a second to import; the map needs none of it."""
    import subprocess
    import sys

    code = "import sys, siteplanner.maps; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
