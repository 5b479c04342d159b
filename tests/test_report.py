"""The leadership report.html: what a director reads, and rebuilding it from a run's folder."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest
from test_map import SCRIPT_END, XSS, hostile_result

from siteplanner._errors import InputError
from siteplanner.config import CRITERIA
from siteplanner.io import write_rank_outputs
from siteplanner.report import build_report, rebuild_report
from siteplanner.stability import weight_sensitivity


def _cards(html: str) -> list[str]:
    return re.findall(r"<section class='site-card' id='site-([^']*)'>", html)


def _top_k_ids(html: str) -> list[str]:
    table = html[html.index("<table class='top-k'>"):]
    table = table[: table.index("</table>")]
    return re.findall(r"<a href='#site-([^']*)'>[^<]*</a>", table)


@pytest.fixture(scope="module")
def demo_report(demo_out) -> str:
    """The report of the demo run, with the floor plans of its top sites."""
    return (demo_out / "report.html").read_text(encoding="utf-8")


def test_the_report_answers_with_a_summary_table_and_a_card_per_site(demo_report, demo_result):
    html = demo_report
    ids = list(demo_result.selected["site_id"].astype(str))
    assert _cards(html) == ids
    assert _top_k_ids(html) == ids
    summary = html[html.index("<h2>Summary</h2>"):html.index("<h2>The top")]
    assert "Open the next Nordea branches at the 10 sites" in summary
    assert "2019-04-21" in html[html.index("<header>"):html.index("</header>")]
    assert "<span class='tag proxy'>proxy</span></td><td>proxy model from OpenStreetMap" in summary
    assert summary.count("tag measured") == 6
    for heading in ("How the sites were chosen", "How firm the ranking is",
                    "Data sources and licences"):
        assert f"<h2>{heading}</h2>" in html
    assert "Open Database License" in html and "OpenStreetMap contributors" in html
    assert "b73e9c2c82054d65" in html  # the input's sha256, as run.json has it


def test_every_site_is_named_by_its_address_and_district(demo_report, demo_result):
    for _, row in demo_result.selected.iterrows():
        words = f"{row['address']}, {row['district']}"
        assert f"<a href='#site-{row['site_id']}'>{html_escape(words, quote=False)}</a>" in demo_report
        assert f"&middot; {html_escape(words, quote=False)}</h3>" in demo_report


def test_the_report_is_one_file_with_inline_charts_and_no_script(demo_report, demo_result):
    html = demo_report
    srcs = re.findall(r"<img[^>]*\bsrc='([^']*)'", html)
    k = len(demo_result.selected)
    plans = html.count("<img class='plan'")
    assert plans == demo_result.study.floorplan.sites
    # breakdown and mini-map per site, the overview, the plans, the NPV tornado
    assert len(srcs) == 2 * k + 1 + plans + 1
    assert all(s.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for s in srcs)
    assert "<script" not in html.lower()
    assert not re.search(r"(href|src)=['\"]?(https?:)?//(?!www\.openstreetmap\.org/copyright)", html)


def test_the_report_prints_to_a4_with_a_page_per_site(demo_report):
    css = demo_report[demo_report.index("<style>"):demo_report.index("</style>")]
    assert "size: A4" in css
    print_rules = css[css.index("@media print"):]
    assert re.search(r"\.site-card \{[^}]*break-before: page", print_rules)


def test_weight_sensitivity_reproduces_the_ranking_when_nothing_changes(demo_result):
    study = demo_result.study
    none = weight_sensitivity(demo_result.candidates, demo_result.layers.own_branches,
                              study.criteria, study.selection, change=0.0)
    same, kept = none.scenarios, none.kept_share
    k = len(demo_result.selected)
    assert (same["kept"] == k).all() and (same["same_rank"] == k).all()
    assert (kept == 1.0).all()
    sens = weight_sensitivity(demo_result.candidates, demo_result.layers.own_branches,
                              study.criteria, study.selection)
    moved, kept = sens.scenarios, sens.kept_share
    assert len(moved) == 2 * len(CRITERIA)
    assert moved["kept"].between(0, k).all() and moved["kept"].min() < k
    assert set(kept.index) == set(demo_result.selected["site_id"])
    # A site that a scenario drops is replaced by one that enters.
    assert ((k - moved["kept"]) == moved["entered"].map(len)).all()


def test_the_run_s_stability_and_figures_are_shown(demo_result):
    sel = demo_result.selected.iloc[:2].copy()
    sel["stability"] = [0.97, 0.41]
    sel["expected_demand"] = [1520.0, 830.0]
    extras = {"market": {"captured_share": 0.31, "model": "Huff <b>"}}
    html = build_report(replace(demo_result, selected=sel, extras=extras))
    table = html[html.index("<table class='top-k'>"):]
    table = table[: table.index("</table>")]
    assert "<th class='num'>stability</th>" in table and "kept under" not in table
    assert "97%" in table and "41%" in table and "1,520" in table
    figures = html[html.index("<table class='extras small'>"):]
    assert "market › captured share</td><td class='num'>0.31" in figures
    assert "Huff &lt;b&gt;" in figures


def test_hostile_names_show_as_text(demo_result):
    html = build_report(hostile_result(demo_result, k=2))
    assert XSS not in html and SCRIPT_END not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower()


def test_rebuild_from_a_run_folder_draws_the_same_sites_and_the_floor_plans(demo_result, tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    sel = demo_result.selected.iloc[:3]
    cands = demo_result.candidates.copy()
    cands.loc[~cands.index.isin(sel.index), "rank"] = np.nan
    result = replace(demo_result, selected=sel, candidates=cands)
    out = tmp_path / "run"
    # as `rank --no-report` writes it: no report, no floor plans
    write_rank_outputs(result, out, report=False)
    assert not (out / "report.html").exists() and not (out / "floorplans").exists()
    ids = list(pd.read_csv(out / "ranked_sites.csv", dtype={"site_id": str})["site_id"])
    zones = gpd.GeoDataFrame({"name": ["banking hall", "back office"]},
                             geometry=[box(0, 0, 12, 10), box(12, 0, 18, 10)])
    # floor plans added to the run's folder: one zones-only plan and one hostile drawing
    (out / "floorplans" / ids[0]).mkdir(parents=True)
    (out / "floorplans" / ids[0] / "zones.geojson").write_text(zones.to_json())
    (out / "floorplans" / ids[1]).mkdir(parents=True)
    (out / "floorplans" / ids[1] / "plan.svg").write_text(
        "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><script>alert(1)</script>"
        "<rect width='10' height='10'/></svg>")
    path = rebuild_report(out)
    html = path.read_text(encoding="utf-8")
    assert path == out / "report.html"
    assert _cards(html) == ids and _top_k_ids(html) == ids
    assert html.count("<img class='plan'") == 2
    card3 = html[html.index(f"id='site-{ids[2]}'"):]
    assert "class='plan'" not in card3[: card3.find("</section>")]
    assert "<script" not in html.lower()
    run = json.loads((out / "run.json").read_text())
    assert run["osm_data_date"][:10] in html
    assert "How firm the ranking is" in html


def test_rebuild_names_what_is_missing(tmp_path):
    with pytest.raises(InputError, match=r"run\.json: not found; give the output folder"):
        rebuild_report(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        rebuild_report(tmp_path / "nope")
