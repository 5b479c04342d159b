"""User files replace OSM layers: own branch lists, competitors, counts, candidate premises."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from conftest import STUDY, absolute_study_text

from siteplanner.cli import app


@pytest.fixture(scope="module")
def osm_points(helsinki_osm) -> gpd.GeoDataFrame:
    return helsinki_osm.features


def rank(runner, tmp_path, *args):
    """A run without report and floor plans: these tests read its table, layers, map and run.json."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--no-report", "--out", str(out), *args])
    assert res.exit_code == 0, res.output + res.stderr
    return out, res


def test_measured_foot_traffic_replaces_the_proxy_and_says_so(runner, tmp_path, osm_points):
    # counters at the real tram stops; the busiest planted on the railway station square
    stops = osm_points[osm_points["railway"] == "tram_stop"].copy()
    station = osm_points[osm_points["railway"] == "station"].geometry.iloc[0]
    d = stops.to_crs(3067).distance(gpd.GeoSeries([station], crs=4326).to_crs(3067).iloc[0])
    stops["count"] = (20000 / (1 + d / 100)).round()
    p = tmp_path / "counts.csv"
    pd.DataFrame({"lon": stops.geometry.x, "lat": stops.geometry.y,
                  "count": stops["count"]}).to_csv(p, index=False)
    out, _ = rank(runner, tmp_path, "--layer", f"foot_traffic={p}")
    run = json.loads((out / "run.json").read_text())
    assert run["foot_traffic"] == "measured"
    assert run["layers"]["foot_traffic"]["measured"] is True
    assert "foot traffic: measured counts" in (out / "map.html").read_text()
    ranked = pd.read_csv(out / "ranked_sites.csv")
    # foot traffic is now in the counters' own unit (people per day), not the proxy's
    assert ranked["foot_traffic"].min() > 0.2 * stops["count"].min()
    assert ranked["foot_traffic"].max() < 5 * stops["count"].max()
    # the counts are calibrated (a Poisson GLM on OSM features) and validated against the proxy
    cal = run["foot_traffic_calibration"]
    assert cal["source"] == "calibrated model" and cal["method"] == "glm"
    text = json.dumps(cal)
    assert "spearman" in text and "r2" in text and "proxy" in text


def test_foot_traffic_without_a_count_column_is_refused(runner, tmp_path, osm_points):
    p = tmp_path / "counts.geojson"
    osm_points.head(20)[["name", "geometry"]].to_file(p, driver="GeoJSON")
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(tmp_path / "o"),
                              "--layer", f"foot_traffic={p}"])
    assert res.exit_code == 1
    assert "no 'count' column" in res.stderr


def test_user_candidate_premises_are_ranked_instead_of_h3_cells(runner, tmp_path, osm_points):
    shops = osm_points[osm_points["shop"].notna()].head(60).reset_index(drop=True)
    shops["site_id"] = "shop-" + shops["osm_id"]
    p = tmp_path / "premises.parquet"
    shops[["site_id", "name", "geometry"]].to_parquet(p)
    out, _ = rank(runner, tmp_path, "--layer", f"candidates={p}", "--top", "5")
    ranked = pd.read_csv(out / "ranked_sites.csv")
    assert ranked["site_id"].str.startswith("shop-").all()
    assert len(gpd.read_file(out / "sites.gpkg", layer="candidates")) == 60


def test_a_competitor_list_overrides_osm_and_moves_the_ranking(runner, tmp_path, osm_points, demo_out):
    # sites are taken greedily in score order, so the demo's best site is also the best of three
    base = pd.read_csv(demo_out / "ranked_sites.csv")
    # the user's competitor list: one rival opens on the best site, one far from the top three
    p = tmp_path / "competitors.gpkg"
    gpd.GeoDataFrame({"name": ["Rival A", "Rival B"]},
                     geometry=gpd.points_from_xy([base.loc[0, "lon"], 24.9525],
                                                 [base.loc[0, "lat"], 60.1780]), crs=4326
                     ).to_file(p, driver="GPKG")
    out, _ = rank(runner, tmp_path / "b", "--top", "3", "--layer", f"competitors={p}")
    comp = gpd.read_file(out / "sites.gpkg", layer="competitors")
    assert sorted(comp["label"]) == ["Rival A", "Rival B"]
    after = pd.read_csv(out / "ranked_sites.csv")
    assert after.loc[0, "site_id"] != base.loc[0, "site_id"]
    run = json.loads((out / "run.json").read_text())
    assert run["layers"]["competitors"]["source"].startswith("user:")


def test_own_branch_list_in_the_study_file(runner, tmp_path, osm_points):
    aktia = osm_points[osm_points["name"].fillna("").str.contains("Aktia")]
    p = tmp_path / "own.geojson"
    aktia[["name", "geometry"]].to_file(p, driver="GeoJSON")
    study = absolute_study_text().replace('osm = "helsinki.osm.pbf"',
                                      f'osm = "{STUDY.parent / "helsinki.osm.pbf"}"')
    study += f'\n[layers.own_branches]\npath = "{p.name}"\n'
    sp = tmp_path / "study.toml"
    sp.write_text(study)
    res = runner.invoke(app, ["rank", str(sp), "--no-report", "--top", "3", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.stderr
    own = gpd.read_file(tmp_path / "o" / "sites.gpkg", layer="own_branches")
    assert len(own) == len(aktia) == 3


def test_weights_from_the_command_line_change_the_ranking(runner, tmp_path, demo_out):
    b, _ = rank(runner, tmp_path / "b", "--top", "5",
                "--set", "criteria.transit.weight=1", "--set", "criteria.foot_traffic.weight=0",
                "--set", "criteria.commercial.weight=0")
    # the demo's first five sites are what the study's own weights choose with --top 5
    ra, rb = pd.read_csv(demo_out / "ranked_sites.csv").head(5), pd.read_csv(b / "ranked_sites.csv")
    assert len(rb) == 5
    assert ra["site_id"].tolist() != rb["site_id"].tolist()
    assert (rb["foot_traffic_contribution"] == 0).all()
    # with transit dominant, the top site is at least as transit-rich as the default top
    assert rb.loc[0, "transit"] >= ra.loc[0, "transit"]
