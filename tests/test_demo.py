"""The demo run on the bundled city: what a planner would check in its outputs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import PBF, STUDY

from siteplanner.config import CRITERIA
from siteplanner.pipeline import STAGES
from siteplanner.selection._status import STATUSES


def test_demo_writes_the_four_outputs(demo_out):
    assert sorted(p.name for p in demo_out.iterdir()) == [
        ".siteplanner-manifest.json", "compliance.csv", "floorplans", "map.html",
        "ranked_sites.csv", "report.html", "run.json", "sites.gpkg"]
    # the files are written beside the folder and moved in: nothing of that is left
    assert not list(demo_out.parent.glob(".siteplanner-*"))


def test_the_top_sites_get_floor_plans_sized_by_their_demand(demo_out, demo_study):
    ranked = pd.read_csv(demo_out / "ranked_sites.csv")
    top = ranked.head(demo_study.floorplan.sites)
    plans = json.loads((demo_out / "run.json").read_text())["floorplans"]
    assert list(plans) == top["site_id"].tolist()
    for site_id in plans:
        assert plans[site_id]["all_constraints_pass"] is True
        for name in ("zones.geojson", "plan.svg", "plan.png", "plan.dxf", "metrics.json"):
            assert (demo_out / "floorplans" / site_id / name).is_file()

    # the busiest site gets at least as many counter stations as the quietest planned one
    def stations(site_id: str) -> int:
        z = gpd.read_file(demo_out / "floorplans" / site_id / "zones.geojson")
        return int(z.loc[z["zone"] == "service", "units"].iloc[0])

    arrivals = {k: v["arrivals_per_hour"] for k, v in plans.items()}
    busiest, quietest = max(arrivals, key=arrivals.get), min(arrivals, key=arrivals.get)
    assert stations(busiest) >= stations(quietest)
    report = (demo_out / "report.html").read_text()
    assert all(f"floor plan of site {site_id}" in report for site_id in plans)


def test_ranked_sites_has_the_documented_columns_and_k_rows(demo_out, demo_study):
    df = pd.read_csv(demo_out / "ranked_sites.csv")
    expected = ["rank", "site_id", "address", "district", "lon", "lat", "score"]
    for name in CRITERIA:
        expected += [name, f"{name}_contribution"]
    assert list(df.columns[: len(expected)]) == expected
    assert len(df) == demo_study.selection.top_k
    assert df["rank"].tolist() == list(range(1, len(df) + 1))
    assert df["score"].is_monotonic_decreasing


def test_contributions_sum_to_the_score(demo_out):
    df = pd.read_csv(demo_out / "ranked_sites.csv")
    parts = df[[f"{n}_contribution" for n in CRITERIA]].sum(axis=1)
    np.testing.assert_allclose(parts, df["score"], atol=5e-6)
    cands = gpd.read_file(demo_out / "sites.gpkg", layer="candidates")
    np.testing.assert_allclose(cands[[f"{n}_contribution" for n in CRITERIA]].sum(axis=1),
                               cands["score"], atol=1e-9)


def test_selected_sites_lie_inside_the_study_area(demo_result):
    area = demo_result.layers.area_polygon
    assert demo_result.selected.within(area).all()


def test_spacing_rules_are_kept(demo_result, demo_study):
    sel = demo_result.selected
    xy = np.column_stack([sel.geometry.x, sel.geometry.y])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() >= demo_study.selection.min_spacing_m
    own = demo_result.layers.own_branches
    d_own = sel.geometry.apply(lambda p: own.distance(p).min())
    assert (d_own >= demo_study.selection.min_distance_to_own_m).all()


def test_the_spacing_rule_is_visible_for_excluded_candidates(demo_out):
    cands = gpd.read_file(demo_out / "sites.gpkg", layer="candidates")
    detail = cands["status_detail"]
    assert detail.str.startswith("within 200 m of own branch Nordea").any()
    assert detail.str.contains("of selected site #1").any()
    assert set(cands["status"]) <= set(STATUSES)
    assert {"selected", "too_close_to_own", "too_close_to_selected", "below_cut"} <= set(cands["status"])
    # a candidate scoring above a chosen one is only ever left out by a spacing rule
    worst_selected = cands.loc[cands["rank"].notna(), "score"].min()
    better_unchosen = cands[(cands["score"] > worst_selected) & cands["rank"].isna()]
    assert better_unchosen["status"].isin(["too_close_to_own", "too_close_to_selected"]).all()


@pytest.fixture(scope="module")
def tables_only_out(runner, tmp_path_factory) -> Path:
    """The demo study run again with --no-report, into a folder an earlier full run left."""
    from siteplanner.cli import app

    out = tmp_path_factory.mktemp("tables_only")
    (out / "report.html").write_text("the report of an earlier run")
    res = runner.invoke(app, ["rank", str(STUDY), "--no-report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_two_runs_give_identical_tables(demo_out, tables_only_out):
    a = (demo_out / "ranked_sites.csv").read_bytes()
    assert a == (tables_only_out / "ranked_sites.csv").read_bytes()
    pd.testing.assert_frame_equal(gpd.read_file(demo_out / "sites.gpkg", layer="candidates"),
                                  gpd.read_file(tables_only_out / "sites.gpkg", layer="candidates"))


def test_no_report_writes_the_table_layers_map_and_run_json_only(tables_only_out):
    assert sorted(p.name for p in tables_only_out.iterdir()) == [
        ".siteplanner-manifest.json", "compliance.csv", "map.html", "ranked_sites.csv", "run.json",
        "sites.gpkg"]
    run = json.loads((tables_only_out / "run.json").read_text())
    assert "floorplans" not in run and run["selection"]["selected"] == 10
    assert "floorplans/" not in (tables_only_out / "map.html").read_text()


def test_gpkg_has_every_layer_in_wgs84(demo_out):
    con = sqlite3.connect(demo_out / "sites.gpkg")
    names = {r[0] for r in con.execute("select table_name from gpkg_contents")}
    con.close()
    assert {"candidates", "selected", "competitors", "own_branches", "transit", "streets"} <= names
    # the streets let `siteplanner report` redraw the mini-maps without the OSM file
    streets = gpd.read_file(demo_out / "sites.gpkg", layer="streets")
    assert len(streets) > 1000 and streets.crs.to_epsg() == 4326
    own = gpd.read_file(demo_out / "sites.gpkg", layer="own_branches")
    assert own.crs.to_epsg() == 4326
    assert len(own) == 4 and (own["label"] == "Nordea").all()
    comp = gpd.read_file(demo_out / "sites.gpkg", layer="competitors")
    assert len(comp) == 13 and not comp["label"].str.contains("Nordea").any()
    transit = gpd.read_file(demo_out / "sites.gpkg", layer="transit")
    assert {"bus", "tram", "metro", "rail"} <= set(transit["mode"])


def test_run_json_records_provenance(demo_out):
    run = json.loads((demo_out / "run.json").read_text())
    pbf = next(i for i in run["inputs"] if i["path"].endswith("helsinki.osm.pbf"))
    assert pbf["sha256"] == hashlib.sha256(PBF.read_bytes()).hexdigest()
    assert run["osm_data_date"].startswith("2019-04")
    assert run["foot_traffic"] == "proxy"
    assert run["layers"]["foot_traffic"] == {"source": "proxy", "measured": False}
    assert run["layers"]["competitors"]["measured"] is True
    assert set(run["seconds_per_stage"]) == {name for name, _ in STAGES} | {"write"}
    assert run["study"]["brand"] == ["Nordea"]
    assert run["packages"]["geopandas"]
    assert run["study"]["source_file"].endswith(STUDY.name)


def test_map_credits_openstreetmap(demo_out):
    # the map's layers and markers are tested in test_map.py and in a real browser
    assert "© OpenStreetMap contributors" in (demo_out / "map.html").read_text()
