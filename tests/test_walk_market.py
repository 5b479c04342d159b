"""Walking catchments and Huff demand in the ranking outputs (issue: walk and market share)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import STUDY, absolute_study_text

from siteplanner import features as feat
from siteplanner import huff
from siteplanner.cli import app
from siteplanner.market import walk_graph
from siteplanner.network import WalkGraph
from siteplanner.proximity import NetworkWalk, walk_minutes


def test_ranked_sites_carry_the_demand_split(demo_out):
    df = pd.read_csv(demo_out / "ranked_sites.csv")
    cols = ["expected_demand", "from_competitors", "cannibalized", "net_new_demand"]
    assert set(cols) <= set(df.columns)
    assert (df[cols] >= -1e-9).all().all()
    np.testing.assert_allclose(df["net_new_demand"], df["expected_demand"] - df["cannibalized"],
                               atol=1e-5)
    assert (df["from_competitors"] + df["cannibalized"] <= df["expected_demand"] + 1e-5).all()
    # every site has a bus stop within the study's reach, and counts the stops within 5 minutes
    assert df["walk_min_bus"].notna().all() and "stops_within_5min" in df


def test_run_json_has_the_brand_demand_before_and_after(demo_out):
    run = json.loads((demo_out / "run.json").read_text())
    m = run["market"]
    assert m["walk_times"] == "network" and m["lambda"] == 2.0
    assert 0 < m["own_demand_before"] < m["own_demand_after"] <= m["total_demand"]
    assert run["network"]["walk_times"] == "network"
    # the clipped extract leaves some candidates on street pieces cut off from the rest
    assert 0 < run["network"]["candidates_off_main_network"] < 0.2


def test_catchments_are_street_shaped_and_nested(demo_out, demo_study):
    cat = gpd.read_file(demo_out / "sites.gpkg", layer="catchments").to_crs(3067)
    sel = gpd.read_file(demo_out / "sites.gpkg", layer="selected").to_crs(3067)
    assert sorted(cat["minutes"].unique()) == list(demo_study.network.catchment_minutes)
    assert set(cat["site_id"]) == set(sel["site_id"])
    for site_id, g in cat.groupby("site_id"):
        five = g.loc[g["minutes"] == 5, "geometry"].iloc[0]
        ten = g.loc[g["minutes"] == 10, "geometry"].iloc[0]
        assert five.area < ten.area
        assert five.difference(ten.buffer(1)).area < 1.0
        site = sel.loc[sel["site_id"] == site_id, "geometry"].iloc[0]
        assert five.buffer(60).contains(site)
        # along the streets a 10-minute walk (800 m) covers less than the 800 m circle
        assert ten.area < np.pi * 800**2


def run(runner, tmp_path, *args):
    out = tmp_path / "out"
    return runner.invoke(app, ["rank", str(STUDY), "--out", str(out), *args]), out


@pytest.mark.parametrize(("setting", "needle"), [
    ("network.walk_speed_kmh=0", "network.walk_speed_kmh"),
    ("network.cutoff_min=-5", "network.cutoff_min"),
    ("huff.lambda=7", "huff.lambda = 7: expected a number in (0, 5]"),
])
def test_bad_walk_and_huff_settings(runner, tmp_path, setting, needle):
    res, out = run(runner, tmp_path, "--set", setting)
    assert res.exit_code == 1
    assert res.stderr.startswith("error:") and needle in res.stderr
    assert not out.exists()


def test_without_streets_distances_fall_back_to_straight_lines(runner, tmp_path, helsinki_osm):
    f = helsinki_osm.features
    files = {
        "area": gpd.GeoDataFrame(geometry=[helsinki_osm.nodes.union_all().convex_hull], crs=4326),
        "own_branches": f[f["name"].fillna("").str.contains("Nordea")][["name", "geometry"]],
        "competitors": f[(f["amenity"] == "bank") & ~f["name"].fillna("").str.contains("Nordea")],
        "pois": f[f["shop"].notna()][["name", "geometry"]],
    }
    args = []
    for kind, gdf in files.items():
        p = tmp_path / f"{kind}.gpkg"
        gdf[[c for c in gdf.columns if c in ("name", "geometry")]].to_file(p, driver="GPKG")
        args += ["--layer", f"{kind}={p}"]
    study = tmp_path / "study.toml"
    study.write_text('[study]\nname = "files only"\nbrand = "Nordea"\n'
                     "[selection]\ntop_k = 3\n")
    res = runner.invoke(app, ["rank", str(study), "--no-report", "--out", str(tmp_path / "out"), *args])
    assert res.exit_code == 0, res.stderr
    assert "straight-line" in res.stderr
    run_doc = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_doc["network"]["walk_times"] == "straight-line"
    assert run_doc["market"]["walk_times"] == "straight-line"
    assert len(pd.read_csv(tmp_path / "out" / "ranked_sites.csv")) == 3


def test_lambda_is_fitted_from_observed_visits(runner, tmp_path, demo_result, demo_study):
    """Plant visits made by Huff at λ = 1.4 on the real branches; the run recovers λ."""
    layers = demo_result.layers
    branches = pd.concat([layers.own_branches[["geometry"]], layers.competitors[["geometry"]]],
                         ignore_index=True)
    branches = gpd.GeoDataFrame(branches, geometry="geometry", crs=layers.crs)
    demand = demo_result.demand  # the market's demand points: people per day
    from siteplanner.market import walk_graph

    graph = walk_graph(layers, speed_kmh=demo_study.network.walk_speed_kmh)
    minutes = walk_minutes(graph, demand, branches, cutoff_min=demo_study.network.cutoff_min,
                       metres_per_minute=80.0)
    p = huff.huff_probabilities(minutes, np.ones(len(branches)), lam=1.4)
    visits = huff.facility_demand(p, demand["demand"].to_numpy())
    wgs = branches.to_crs(4326)
    path = tmp_path / "visits.csv"
    pd.DataFrame({"lon": wgs.geometry.x, "lat": wgs.geometry.y, "visits": visits}).to_csv(
        path, index=False)
    study = absolute_study_text().replace('osm = "helsinki.osm.pbf"',
                                      f'osm = "{STUDY.parent / "helsinki.osm.pbf"}"')
    study += f'\n[huff]\nobserved = "{path}"\n'
    sp = tmp_path / "study.toml"
    sp.write_text(study)
    res = runner.invoke(app, ["rank", str(sp), "--out", str(tmp_path / "out"), "--top", "2",
                              "--no-report"])
    assert res.exit_code == 0, res.stderr
    m = json.loads((tmp_path / "out" / "run.json").read_text())["market"]
    assert m["lambda_source"].startswith("fitted")
    assert m["lambda"] == pytest.approx(1.4, abs=0.05)


def test_observed_visits_away_from_any_branch_are_refused(runner, tmp_path):
    path = tmp_path / "visits.csv"
    pd.DataFrame({"lon": [24.9300], "lat": [60.1790], "visits": [100]}).to_csv(path, index=False)
    study = absolute_study_text().replace('osm = "helsinki.osm.pbf"',
                                      f'osm = "{STUDY.parent / "helsinki.osm.pbf"}"')
    sp = tmp_path / "study.toml"
    sp.write_text(study + f'\n[huff]\nobserved = "{path}"\n')
    res = runner.invoke(app, ["rank", str(sp), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert "visits.csv" in res.stderr and "from the nearest existing branch" in res.stderr


def test_the_market_splits_people_per_day(demo_result):
    """Demand points carry residents and workers from the buildings; the split is in people per day."""
    market, demand = demo_result.extras["market"], demo_result.demand
    assert market["demand_unit"] == "people per day"
    assert demo_result.extras["demand"]["sources"]["residents"].startswith("OSM buildings")
    people = demand["residents"].sum() + demand["workers"].sum()
    assert market["total_demand"] == pytest.approx(people, rel=1e-6)
    expected = demo_result.selected["expected_demand"]
    assert (expected > 0).all() and expected.sum() <= people


class ForwardWalk:
    """The method NetworkWalk replaced: one search from every candidate to every node."""

    kind = "network"

    def __init__(self, graph, candidates, *, cutoff_m):
        self.graph = graph
        self.minutes = graph.walk_minutes(candidates, cutoff_min=cutoff_m / graph.metres_per_minute).tocsc()

    def pairs(self, points, radius_m):
        pos, snap_m = self.graph.snap(points)
        sub = self.minutes[:, pos].tocoo()
        d = sub.data * self.graph.metres_per_minute + snap_m[sub.col]
        keep = d < radius_m
        return sub.row[keep], sub.col[keep], d[keep]


def _criteria(cands, layers, study, prox, reach_m, mpm):
    from siteplanner.footfall import foot_traffic_points

    c = study.criteria
    foot, _ = foot_traffic_points(layers)
    cols = [feat.kernel_sum(cands, pts, radius_m=c[name].radius_m, weights=w, name=name, proximity=prox)
            for name, pts, w in [("foot_traffic", foot, foot["count"].to_numpy()),
                                 ("transit", layers.transit, None), ("commercial", layers.pois, None),
                                 ("competition", layers.competitors, None),
                                 ("cannibalization", layers.own_branches, None)]]
    access = feat.transit_access(cands, layers.transit, proximity=prox, reach_m=reach_m,
                                 metres_per_minute=mpm, within_min=study.network.transit_within_min)
    return pd.concat(cols, axis=1), access


def _demo_walk(demo_result, demo_study):  # noqa: ANN202
    """The demo's layers, candidates, walking graph, metres per minute and walk reach (m)."""
    layers, cands = demo_result.layers, demo_result.candidates
    graph = walk_graph(layers, speed_kmh=demo_study.network.walk_speed_kmh)
    mpm = graph.metres_per_minute
    return layers, cands, graph, mpm, demo_study.network.cutoff_min * mpm


def test_network_features_equal_the_search_from_every_candidate(demo_result, demo_study):
    layers, cands, graph, mpm, reach_m = _demo_walk(demo_result, demo_study)
    walk = NetworkWalk(graph, cands, cutoff_m=reach_m)
    got, got_access = _criteria(cands, layers, demo_study, walk, reach_m, mpm)
    want, want_access = _criteria(cands, layers, demo_study, ForwardWalk(graph, cands, cutoff_m=reach_m),
                                  reach_m, mpm)
    assert (want > 0).sum().min() > 20  # every criterion reaches some candidates
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(got_access, want_access)
    # Layers share searches: the stops searched for transit serve the foot-traffic proxy too.
    assert len(walk._blocks) <= 6


def test_a_bounded_search_cache_frees_old_searches_and_gives_the_same_features(
        demo_result, demo_study, monkeypatch):
    # A dense country's kept searches would take hundreds of MB: past the budget the oldest
    # are freed and rerun when asked for again, and nothing a user sees changes.
    import siteplanner.proximity as proximity

    layers, cands, graph, mpm, reach_m = _demo_walk(demo_result, demo_study)
    kept = NetworkWalk(graph, cands, cutoff_m=reach_m)
    want, want_access = _criteria(cands, layers, demo_study, kept, reach_m, mpm)
    monkeypatch.setattr(proximity, "SEARCH_CACHE_BYTES", 0)
    bounded = NetworkWalk(graph, cands, cutoff_m=reach_m)
    got, got_access = _criteria(cands, layers, demo_study, bounded, reach_m, mpm)
    # a rerun search batches its sources otherwise: sums differ in the last bit at most
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(got_access, want_access)
    assert sum(b is not None for b in bounded._blocks) == 1  # only the newest search is kept
    assert sum(b is not None for b in kept._blocks) > 1
    # a node searched again farther frees its shorter search once no other row needs it
    stops = layers.transit
    again = NetworkWalk(graph, cands, cutoff_m=reach_m)
    again.pairs(stops, 100.0)
    again.pairs(stops, 300.0)
    assert again._blocks[0] is None and again._blocks[1] is not None


def test_network_pairs_on_a_hand_built_street_grid():
    """A 4 x 3 grid of 100 m blocks; candidates and shops set back from the corners."""
    gx, gy = np.meshgrid(np.arange(4) * 100.0, np.arange(3) * 100.0)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    idx = np.arange(12).reshape(3, 4)
    u = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    v = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    lines = shapely.linestrings(np.stack([xy[u], xy[v]], 1).reshape(-1, 2),
                                indices=np.repeat(np.arange(len(u)), 2))
    graph = WalkGraph(np.arange(12), xy, u, v, np.full(len(u), 100.0), lines, crs="EPSG:3067")
    cands = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0, 110, 205, 300], [5, 0, 100, 190]),
                             crs="EPSG:3067")
    shops = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0, 100, 300, 300], [0, 95, 0, 200]),
                             crs="EPSG:3067")
    walk = NetworkWalk(graph, cands, cutoff_m=400.0)
    i, j, d = walk.pairs(shops, 250.0)
    got = {(int(a), int(b)): float(x) for a, b, x in zip(i, j, d, strict=True)}
    # Candidate 0 sits 5 m off corner (0, 0), where shop 0 stands: 5 m. Shop 1, 5 m off
    # corner (100, 100), is 200 m of streets away: 5 + 200 + 5 m. Candidate 1 is 10 m off
    # (100, 0).
    assert got[(0, 0)] == pytest.approx(5.0)
    assert got[(0, 1)] == pytest.approx(210.0)
    assert got[(1, 0)] == pytest.approx(110.0)
    assert got[(1, 1)] == pytest.approx(10 + 100 + 5)
    assert got[(2, 1)] == pytest.approx(5 + 100 + 5)  # (205, 100) -> corner (200, 100) -> (100, 100)
    assert got[(3, 3)] == pytest.approx(10.0)
    assert (1, 3) not in got  # 10 + 400 m: beyond the 250 m radius
    assert set(got) == set(zip(*ForwardWalk(graph, cands, cutoff_m=400.0).pairs(shops, 250.0)[:2],
                               strict=True))
    k = feat.commercial(cands, shops, radius_m=250.0, proximity=walk)
    want = [sum((1 - (got[(c, s)] / 250) ** 2) ** 2 for s in range(4) if (c, s) in got) for c in range(4)]
    np.testing.assert_allclose(k.to_numpy(), want, rtol=1e-12)
