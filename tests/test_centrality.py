"""Street centrality at pedestrian radii on the bundled city's real walking network."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from siteplanner._errors import InputError
from siteplanner.centrality import network_centrality, stratified_sample, walk_centrality
from siteplanner.network import WalkGraph


@pytest.fixture(scope="module")
def graph(helsinki_osm) -> WalkGraph:
    crs = helsinki_osm.nodes.estimate_utm_crs()
    return WalkGraph.from_gdfs(helsinki_osm.nodes.to_crs(crs), helsinki_osm.edges.to_crs(crs))


@pytest.fixture(scope="module")
def piece(graph):
    """The real junction graph inside a 600 m square, lengths jittered so no two paths tie."""
    chains = graph._chains
    xy = graph.xy[chains.junctions]
    centre = np.median(xy, axis=0)
    keep = np.flatnonzero((np.abs(xy - centre) < 300).all(axis=1))
    sub = sp.csr_matrix(chains.csgraph[keep][:, keep])
    rng = np.random.default_rng(3)
    upper = sp.triu(sub, k=1).tocoo()
    w = upper.data * (1 + 1e-4 * rng.random(len(upper.data)))
    sym = sp.coo_matrix((np.r_[w, w], (np.r_[upper.row, upper.col], np.r_[upper.col, upper.row])),
                        shape=sub.shape).tocsr()
    return sym, xy[keep]


def _reference(csgraph, radius):
    """Radius-bounded harmonic closeness and betweenness with networkx, one source at a time."""
    g = nx.from_scipy_sparse_array(csgraph)
    n = csgraph.shape[0]
    harmonic, between = np.zeros(n), np.zeros(n)
    for s in range(n):
        dist, paths = nx.single_source_dijkstra(g, s, cutoff=radius)
        harmonic[s] = sum(1 / d for d in dist.values() if d > 0)
        for p in paths.values():
            for v in p[1:-1]:
                between[v] += 1
    return harmonic, between


def test_betweenness_and_closeness_equal_networkx_on_real_streets(piece):
    csgraph, xy = piece
    ours = network_centrality(csgraph, xy, radii=(250.0,), sample_sources=None)
    harmonic, between = _reference(csgraph, 250.0)
    assert ours["harmonic_250"].to_numpy() == pytest.approx(harmonic, rel=1e-9)
    assert ours["betweenness_250"].to_numpy() == pytest.approx(between)
    assert between.max() > 100  # the test would not notice a zero answer


def test_tiles_do_not_change_the_answer(piece):
    csgraph, xy = piece
    small = network_centrality(csgraph, xy, radii=(200.0, 400.0), tile_m=60.0, sample_sources=None)
    one = network_centrality(csgraph, xy, radii=(200.0, 400.0), tile_m=10_000.0,
                             sample_sources=None)
    for col in small:
        assert small[col].to_numpy() == pytest.approx(one[col].to_numpy()), col


def test_walk_centrality_covers_every_street_node_and_agrees_with_the_full_graph(graph):
    cent = walk_centrality(graph, radii=(400.0,))
    assert len(cent) == graph.n_nodes
    assert (cent["reach_400"] > 0).mean() > 0.95
    j = graph._chains.junctions
    full = network_centrality(graph.csgraph, graph.xy, radii=(400.0,))
    rho = spearmanr(cent["betweenness_400"].to_numpy()[j], full["betweenness_400"].to_numpy()[j])[0]
    assert rho > 0.9


def test_a_radius_must_be_positive(piece):
    with pytest.raises(InputError, match="positive radii in metres"):
        network_centrality(piece[0], piece[1], radii=(0.0,))


def test_sampled_sources_rank_streets_as_networkx_does(piece):
    """The estimator from a sample of sources (Brandes-Pich) keeps networkx's order of streets."""
    csgraph, xy = piece
    est = network_centrality(csgraph, xy, radii=(250.0,), sample_sources=40)
    assert est.attrs["sample_fraction"]["250"] < 0.5  # it did sample
    harmonic, between = _reference(csgraph, 250.0)
    assert spearmanr(est["betweenness_250"], between)[0] >= 0.95
    assert spearmanr(est["harmonic_250"], harmonic)[0] >= 0.95
    # unbiased: the totals agree within a few per cent
    assert est["betweenness_250"].sum() == pytest.approx(between.sum(), rel=0.05)
    assert est["reach_250"].sum() == pytest.approx(
        network_centrality(csgraph, xy, radii=(250.0,), sample_sources=None)["reach_250"].sum(),
        rel=0.05)


def test_the_sample_of_sources_covers_the_city_evenly(graph):
    """Every 300 m square of Helsinki gets its share of sampled sources, not a random clump."""
    xy = graph.xy[graph._chains.junctions]
    picked = stratified_sample(xy, 0.1, rng=np.random.default_rng(1))
    assert len(picked) == pytest.approx(0.1 * len(xy), abs=1)
    cell = np.floor((xy - xy.min(axis=0)) / 300).astype(int)
    key = cell[:, 0] * 1000 + cell[:, 1]
    _, inv, per_cell = np.unique(key, return_inverse=True, return_counts=True)
    got = np.bincount(inv[picked], minlength=len(per_cell))
    busy = per_cell >= 50
    assert busy.sum() >= 5
    assert np.all(np.abs(got[busy] / per_cell[busy] - 0.1) < 0.05)


def test_default_centrality_says_which_radii_it_sampled(graph):
    cent = walk_centrality(graph)
    frac = cent.attrs["sample_fraction"]
    assert set(frac) == {"400", "800"}
    assert all(0 < f <= 1 for f in frac.values())
    assert frac["800"] <= frac["400"]  # the larger radius reaches more nodes, so needs fewer sources
