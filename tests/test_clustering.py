"""Opportunity zones and territories on the bundled city."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from siteplanner._errors import InputError
from siteplanner.clustering import connectivity_graph, opportunity_zones, territories


@pytest.fixture(scope="module")
def city(demo_result):
    c = demo_result.candidates
    own = demo_result.layers.own_branches[["geometry", "label"]]
    chosen = demo_result.selected[["geometry"]].assign(label=demo_result.selected.index)
    seeds = gpd.GeoDataFrame(pd.concat([own, chosen], ignore_index=True), geometry="geometry", crs=c.crs)
    return c, seeds


@pytest.fixture(scope="module")
def grid(demo_result, city):
    """The demo area as contiguous H3 cells (territories cover the area, not just candidates)."""
    from siteplanner.candidates import h3_candidates

    cells = h3_candidates(demo_result.layers.area, resolution=11)
    foot = demo_result.candidates["foot_traffic"].reindex(cells.index).fillna(0.0)
    return cells.assign(foot_traffic=foot), city[1]


def _shuffled(c: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    return c.iloc[np.random.default_rng(seed).permutation(len(c))]


def test_zones_are_polygons_of_high_scoring_sites(city):
    c, _ = city
    z = opportunity_zones(c)
    poly, labels = z.polygons, z.labels
    assert len(poly) >= 2 and list(poly["zone_id"]) == list(range(1, len(poly) + 1))
    assert (poly.geom_type == "Polygon").all() and poly.is_valid.all()
    threshold = np.quantile(c["score"], 0.9)
    for _, row in poly.iterrows():
        members = c[labels == row["zone_id"]]
        assert len(members) == row["n_sites"]
        assert (members["score"] >= threshold).all()
        assert row["best_site"] == members["score"].idxmax()
        assert row["mean_score"] == pytest.approx(members["score"].mean())
        assert row.geometry.contains(c.loc[row["best_site"], "geometry"])
    assert poly["best_score"].is_monotonic_decreasing
    assert z.report["sites_in_zones"] == int((labels > 0).sum()) == poly["n_sites"].sum()


@pytest.mark.parametrize("method", ["dbscan", "hdbscan"])
def test_zones_do_not_depend_on_row_order_or_reruns(city, method):
    c, _ = city
    a = opportunity_zones(c, method=method, min_samples=5)
    b = opportunity_zones(_shuffled(c, 1), method=method, min_samples=5)
    assert a.report["n_zones"] > 0
    pd.testing.assert_series_equal(a.labels, b.labels.loc[a.labels.index])
    assert a.polygons.drop(columns="geometry").equals(b.polygons.drop(columns="geometry"))
    assert a.polygons.geom_equals(b.polygons).all()


def test_territories_around_branches_are_contiguous_and_balanced(grid):
    c, seeds = grid
    t = territories(c, seeds=seeds, demand="foot_traffic")
    poly, labels = t.polygons, t.labels
    assert len(poly) == len(seeds) == 14
    assert (poly.geom_type == "Polygon").all()  # one piece each: contiguous
    graph = connectivity_graph(c)
    for tid in poly["territory_id"]:
        members = np.flatnonzero(labels.to_numpy() == tid)
        assert connected_components(graph[members][:, members], directed=False)[0] == 1
        assert labels.loc[poly.loc[tid - 1, "seed_site"]] == tid  # the seed's cell is its own
    share = poly["demand"] / poly["demand"].mean()
    # Balanced to 5 %, or as near as whole cells allow, and far better than nearest-seed areas.
    lump = c["foot_traffic"].max() / poly["demand"].mean()
    assert (share - 1).abs().max() <= 0.05 + lump
    assert t.report["unbalanced_max_over_mean"] > share.max() and share.max() < 1.2
    assert poly["n_cells"].sum() == len(c)
    assert poly["demand"].sum() == pytest.approx(c["foot_traffic"].sum())
    # The union of the territories is the candidate area, with no overlaps.
    assert poly.area.sum() == pytest.approx(gpd.GeoSeries(c["cell"]).union_all().area, rel=1e-6)


def test_territories_without_seeds_use_agglomerative_regions(grid):
    c, _ = grid
    t = territories(c, n_territories=6)
    assert len(t.polygons) == 6 and (t.polygons.geom_type == "Polygon").all()
    lump = t.report["largest_cell_over_mean"]
    assert t.report["demand_max_over_mean"] <= 1.05 + lump and t.report["demand_min_over_mean"] >= 0.95 - lump
    again = territories(_shuffled(c, 2), n_territories=6)
    assert set(again.polygons["seed_site"]) == set(t.polygons["seed_site"])
    pd.testing.assert_series_equal(
        t.labels.map(dict(zip(t.polygons["territory_id"], t.polygons["seed_site"], strict=True))),
        again.labels.map(dict(zip(again.polygons["territory_id"], again.polygons["seed_site"],
                                  strict=True))).loc[t.labels.index])


def test_connectivity_is_the_h3_neighbourhood(city):
    c, _ = city
    g = connectivity_graph(c).tocsr()
    pos = {s: i for i, s in enumerate(c.index)}
    for cell in c.index[::37]:
        ring = {n for n in h3.grid_disk(cell, 1) if n != cell and n in pos}
        linked = {c.index[j] for j in g[pos[cell]].indices}
        assert linked == ring


def test_separate_pieces_are_bridged_at_their_closest_cells(city):
    c, _ = city
    far = c.copy()
    far.geometry = far.geometry.translate(5000.0, 0.0)
    far.index = far.index + "-east"
    both = gpd.GeoDataFrame(pd.concat([c, far]), geometry="geometry", crs=c.crs)
    g = connectivity_graph(both)
    assert connected_components(g, directed=False)[0] == 1
    n = len(c)
    across = g[:n, n:].tocoo()
    assert across.nnz == 1  # one bridge, the shortest gap between the two cities
    west = np.column_stack([c.geometry.x, c.geometry.y])
    east = np.column_stack([far.geometry.x, far.geometry.y])
    closest = cKDTree(west).query(east)[0].min()
    assert across.data[0] == pytest.approx(closest)


def test_bad_clustering_input_says_what_to_fix(city):
    c, _ = city
    with pytest.raises(InputError, match="no 'value' column"):
        opportunity_zones(c, score_column="value")
    with pytest.raises(InputError, match="give seeds"):
        territories(c)
    with pytest.raises(InputError, match=">= 0"):
        territories(c, n_territories=3, demand=-c["foot_traffic"])
    with pytest.raises(InputError, match="projected"):
        opportunity_zones(c.to_crs(4326))


def test_a_demand_of_1e308_is_balanced_and_an_overflowing_sum_is_refused(grid):
    """Issue 18, item 9: ``count=1e308`` gave an IndexError in the balancing."""
    c, seeds = grid
    huge = c["foot_traffic"].copy()
    busiest = huge.idxmax()
    huge.loc[busiest] = 1e308
    t = territories(c, seeds=seeds, demand=huge)
    poly = t.polygons
    assert np.isfinite(poly["demand"]).all() and poly["demand"].sum() == pytest.approx(1e308)
    heavy = t.labels.loc[busiest]
    assert poly.loc[heavy - 1, "demand_share"] == pytest.approx(1.0)
    assert poly["n_cells"].sum() == len(c) and (poly.geom_type == "Polygon").all()
    assert np.isfinite([t.report["demand_cv"], t.report["demand_max_over_mean"]]).all()
    many = c["foot_traffic"].where(c["foot_traffic"] < c["foot_traffic"].median(), 1e308)
    with pytest.raises(InputError, match="sums past the largest number"):
        territories(c, seeds=seeds, demand=many)


def test_many_candidates_are_balanced_on_blocks_and_run_json_says_so(grid):
    c, seeds = grid
    exact = territories(c, seeds=seeds)
    assert exact.report["coarsened"] is None
    t = territories(c, seeds=seeds, max_cells=200)
    info = t.report["coarsened"]
    assert info["cells"] == len(c) and len(seeds) < info["blocks"] <= 200
    assert info["block_size_m"] > 0 and "blocks of neighbouring cells" in info["reason"]
    poly, labels = t.polygons, t.labels
    graph = connectivity_graph(c)
    for tid in poly["territory_id"]:
        members = np.flatnonzero(labels.to_numpy() == tid)
        assert connected_components(graph[members][:, members], directed=False)[0] == 1
        assert labels.loc[poly.loc[tid - 1, "seed_site"]] == tid
    assert (poly.geom_type == "Polygon").all() and poly["n_cells"].sum() == len(c)
    # Blocks of a few cells still balance far better than nearest-seed areas.
    lump = (c["foot_traffic"].max() / poly["demand"].mean()) * len(c) / info["blocks"]
    share = poly["demand"] / poly["demand"].mean()
    assert share.max() < min(t.report["unbalanced_max_over_mean"], 1.05 + lump)
    agg = territories(c, n_territories=6, max_cells=200)
    assert len(agg.polygons) == 6 and (agg.polygons.geom_type == "Polygon").all()


def test_dbscan_zones_match_scikit_learn_dbscan_on_the_city_and_at_exact_ties(city):
    """The zones' own DBSCAN (no scikit-learn import on a run) labels every point as
    scikit-learn's: the same core points, clusters, numbering and border choices."""
    from sklearn.cluster import DBSCAN

    from siteplanner.clustering import _dbscan

    c, _ = city
    xy = np.column_stack([c.geometry.x, c.geometry.y])
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    score = c["score"].to_numpy()
    xy = xy[score >= np.quantile(score, 0.8)]  # the zones' input: the best sites, in pieces
    rng = np.random.default_rng(0)
    # integer points put many pairs exactly at the reach, which both count as within it
    cases = [(xy, 1.5 * spacing, 4), (xy, 3.0 * spacing, 8),
             (np.round(rng.uniform(0, 60, size=(2_000, 2))), 2.0, 5),
             (np.round(rng.uniform(0, 40, size=(500, 2))), 1.0, 2)]
    for pts, reach, min_samples in cases:
        expected = DBSCAN(eps=reach, min_samples=min_samples).fit_predict(pts)
        got = _dbscan(pts, reach=reach, min_samples=min_samples)
        assert expected.max() > 0 and (expected == -1).any()
        np.testing.assert_array_equal(got, expected)


def test_territories_from_the_seed_distance_table_equal_one_dijkstra_per_round(grid, monkeypatch):
    """The balancing's rounds answered from the (seed, cell) distances give the labels and
    offsets of one virtual-source Dijkstra per round, on the demo's contiguous cells."""
    import siteplanner.clustering as clustering

    c, seeds = grid
    fast = territories(c, seeds=seeds, demand="foot_traffic")
    monkeypatch.setattr(clustering, "_SEED_TABLE_MAX", 0)
    slow = territories(c, seeds=seeds, demand="foot_traffic")
    pd.testing.assert_series_equal(fast.labels, slow.labels)
    assert fast.report["offsets_m"] == slow.report["offsets_m"]
    pd.testing.assert_frame_equal(fast.polygons.drop(columns="geometry"),
                                  slow.polygons.drop(columns="geometry"))


def test_a_round_with_a_tie_between_seeds_falls_back_to_the_dijkstra():
    """A cell exactly between two seeds is left to the Dijkstra's own tie-break."""
    from scipy import sparse

    from siteplanner.clustering import _SeedSearch

    # a path of five cells, 1 m apart, seeds at both ends: the middle cell is a tie
    i = np.array([0, 1, 1, 2, 2, 3, 3, 4])
    j = np.array([1, 0, 2, 1, 3, 2, 4, 3])
    graph = sparse.csr_matrix((np.ones(8), (i, j)), shape=(5, 5))
    search = _SeedSearch(graph, np.array([0, 4]))
    assert search.table is not None
    assert search._from_table(np.zeros(2)) is None
    np.testing.assert_array_equal(search(np.zeros(2)), search._search(np.zeros(2)))
    assert search.table_rounds == 0
    # with the tie broken by an offset, the table answers, as the Dijkstra does
    np.testing.assert_array_equal(search(np.array([0.0, 0.5])), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(search._search(np.array([0.0, 0.5])), [0, 0, 0, 1, 1])
    assert search.table_rounds == 1
