"""The graph stage's memory: the street-node table goes before the graph's build
temporaries peak, and the graph keeps one KD-tree, with the same graph and answers."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from siteplanner import _chains, pipeline
from siteplanner._state import RankState
from siteplanner.market import walk_graph
from siteplanner.network import WalkGraph


@pytest.fixture(scope="module")
def state_before_network(demo_study) -> RankState:
    """The demo study run up to (not through) the graph stage, with its candidates made
    (from a copy that ran on: the candidates read no street node)."""
    state = RankState(study=demo_study, plan_floors=False)
    for name, stage in pipeline.STAGES:
        if name == "graph":
            break
        stage(state)
    on = _copy(state)
    pipeline.graph_stage(on)
    pipeline.candidates_stage(on)
    state.cands = on.cands
    return state


def _copy(state: RankState) -> RankState:
    """The state with layers of its own, the street-node table a copy only they hold."""
    layers = pipeline.dataclasses.replace(state.layers,
                                          street_nodes=state.layers.street_nodes.copy())
    return pipeline.dataclasses.replace(state, layers=layers, extras=dict(state.extras))


def test_the_graph_stage_lets_go_of_the_street_nodes_before_the_chain_contraction(
        state_before_network, monkeypatch) -> None:
    state = _copy(state_before_network)
    nodes = weakref.ref(state.layers.street_nodes)
    alive_at_contraction = []
    contract = _chains.ChainContraction.__init__

    def watched(self, graph):  # the build's peak: the street-node table must be gone by then
        gc.collect()
        alive_at_contraction.append(nodes() is not None)
        contract(self, graph)

    monkeypatch.setattr(_chains.ChainContraction, "__init__", watched)
    pipeline.graph_stage(state)
    assert alive_at_contraction == [False]
    assert len(state.layers.street_nodes) == 0
    pipeline.network_stage(state)
    assert state.extras["network"]["nodes"] == state.graph.n_nodes > 0


def test_the_graph_stage_builds_the_graph_walk_graph_builds(state_before_network) -> None:
    layers = state_before_network.layers
    speed = state_before_network.study.network.walk_speed_kmh
    plain = walk_graph(layers, speed_kmh=speed)
    state = _copy(state_before_network)
    pipeline.graph_stage(state)
    graph = state.graph
    assert isinstance(graph, WalkGraph) and plain is not None
    assert np.array_equal(graph.node_ids, plain.node_ids) and np.array_equal(graph.xy, plain.xy)
    for a, b in zip((graph.csgraph.indptr, graph.csgraph.indices, graph.csgraph.data),
                    (plain.csgraph.indptr, plain.csgraph.indices, plain.csgraph.data), strict=True):
        assert np.array_equal(a, b)
    cands = state.cands
    assert [np.array_equal(x, y) for x, y in zip(graph.snap(cands), plain.snap(cands),
                                                   strict=True)] == [True, True]
    sources = graph.snap(cands.iloc[:50])[0]
    assert (graph.reach(sources, limit_m=400) != plain.reach(sources, limit_m=400)).nnz == 0


def test_snapping_to_any_piece_and_the_component_report_find_the_nearest_node(
        state_before_network) -> None:
    layers = state_before_network.layers
    graph = walk_graph(layers, speed_kmh=4.8)
    assert graph is not None
    pts = state_before_network.cands.geometry.iloc[::7]
    xy = np.c_[pts.x, pts.y]
    # brute force: every point against every node
    d = np.hypot(xy[:, None, 0] - graph.xy[None, :, 0], xy[:, None, 1] - graph.xy[None, :, 1])
    at, dist = graph.snap(pts, largest_component=False)
    assert np.array_equal(at, d.argmin(axis=1))
    assert np.allclose(dist, d.min(axis=1), rtol=0, atol=1e-9)  # hypot and the tree's sqrt
    report = graph.components(pts)
    assert report.point_in_largest is not None
    assert np.array_equal(report.point_in_largest, graph.in_largest[at])
    assert not hasattr(graph, "_tree_all")  # one tree kept: the largest piece's
