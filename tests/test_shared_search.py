"""The features stage searches each layer once for every criterion and count, and that
changes no value: on the bundled Helsinki, the shared searches give the criteria, the
transit count and the nearby counts of one search per ask, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from siteplanner import features as feat
from siteplanner import pipeline
from siteplanner.features import kernel_sum
from siteplanner.nearby import nearby_sums
from siteplanner.pairsums import PairSum, SharedPairs, pair_sums
from siteplanner.proximity import NetworkWalk, StraightLine


@pytest.fixture(scope="module")
def state(demo_study):
    """The demo study's pipeline state as the network stage leaves it."""
    s = pipeline.RankState(study=demo_study, plan_floors=False)
    for name, stage in pipeline.STAGES:
        if name == "features":
            return s
        stage(s)
    raise AssertionError("no features stage")


def _fresh(s) -> NetworkWalk:
    return NetworkWalk(s.graph, s.cands, cutoff_m=s.reach_m)


def _searched_nodes(graph, monkeypatch) -> list[np.ndarray]:
    """Record the source nodes of every street search the graph runs."""
    calls: list[np.ndarray] = []
    reach = graph.reach

    def counted(sources, **kw):
        calls.append(np.asarray(sources))
        return reach(sources, **kw)

    monkeypatch.setattr(graph, "reach", counted)
    return calls


def _stage(s) -> tuple[pd.DataFrame, pd.DataFrame]:
    s.prox = _fresh(s)
    pipeline.features_stage(s)
    return s.raw, s.access


def test_one_search_per_layer_gives_every_criterion_and_count_as_separate_searches(state, monkeypatch):
    s, layers = state, state.layers
    calls = _searched_nodes(s.graph, monkeypatch)
    raw, access = _stage(s)
    shared_nodes = sum(len(c) for c in calls)
    near = {"pois": layers.pois, "competitors": layers.competitors, "own": layers.own_branches}
    # every layer's points at distinct street nodes: what one search each would take
    per_layer = [len(np.unique(s.graph.snap(p)[0])) for p in
                 (layers.pois, layers.transit, layers.competitors, layers.own_branches)]
    assert 0 < shared_nodes <= sum(per_layer)

    # each ask on its own, every time a walk with nothing kept from another search
    calls.clear()
    walk = {"metres_per_minute": s.metres_per_minute, "within_min": s.study.network.transit_within_min}
    asks = [*feat.criteria_sums(layers, s.study),
            *feat.transit_access_sums(layers.transit, reach_m=s.reach_m, **walk),
            *nearby_sums(near, **walk)]
    alone = [pair_sums(_fresh(s), len(s.cands), [a])[0] for a in asks]
    assert sum(len(c) for c in calls) > 2 * shared_nodes  # 10 asks on 4 layers
    n_pois = len(np.unique(s.graph.snap(layers.pois)[0]))
    assert sum(len(c) for c in calls) >= 3 * n_pois  # the POIs alone: 150 m, 400 m and the count

    idx = s.cands.index
    # the criteria: foot traffic's doorstep sums are inside its proxy, the rest are one sum each
    for name, one in zip(("transit", "commercial", "competition", "cannibalization"), alone[2:6],
                         strict=True):
        assert raw[name].equals(pd.Series(one, index=idx, name=name)), name
    assert access["stops_within_5min"].equals(pd.Series(alone[6], index=idx, name="stops_within_5min"))
    for name, counted in zip(near, alone[7:], strict=True):
        col = f"{name}_within_5min"
        assert access[col].equals(pd.Series(counted, index=idx, name=col)), col
    assert access["pois_within_5min"].sum() > 0 and raw["commercial"].gt(0).any()


def test_the_foot_traffic_proxy_is_the_same_from_shared_and_separate_searches(state):
    s = state
    from siteplanner.footfall import foot_traffic_proxy

    shared = feat.compute_criteria(s.cands, s.layers, s.study, proximity=_fresh(s))["foot_traffic"]
    alone = foot_traffic_proxy(s.cands, s.layers, proximity=_fresh(s))
    assert shared.equals(alone.rename("foot_traffic"))
    assert shared.nunique() > 10  # the proxy ranks the candidates, it is not constant


def test_a_layers_sums_do_not_depend_on_which_layers_were_searched_before(state):
    s = state
    first = kernel_sum(s.cands, s.layers.pois, radius_m=400, name="c", proximity=_fresh(s))
    walk = _fresh(s)  # the stops' searches kept, and reused by the POIs at shared street nodes
    kernel_sum(s.cands, s.layers.transit, radius_m=400, name="t", proximity=walk)
    after = kernel_sum(s.cands, s.layers.pois, radius_m=400, name="c", proximity=walk)
    assert after.equals(first)


def test_an_ask_not_expected_gets_the_right_sum(state):
    s = state
    pois = s.layers.pois
    shared = SharedPairs(_fresh(s), len(s.cands), [PairSum(pois, 400.0)])
    (got,) = shared.sums([PairSum(pois, 250.0, kernel=False)])  # joins the layer's pass
    (want,) = pair_sums(_fresh(s), len(s.cands), [PairSum(pois, 250.0, kernel=False)])
    assert np.array_equal(got, want) and got.sum() > 0
    shared.sums([PairSum(pois, 400.0)])
    assert shared.passes == 1
    (late,) = shared.sums([PairSum(pois, 300.0)])  # after the layer's pass: one of its own
    assert shared.passes == 2
    assert np.array_equal(late, kernel_sum(s.cands, pois, radius_m=300.0, name="x",
                                           proximity=_fresh(s)).to_numpy())


def test_straight_lines_share_only_asks_of_one_radius(state):
    s = state
    line = StraightLine(s.cands)
    asks = [PairSum(s.layers.pois, 150.0), PairSum(s.layers.pois, 400.0),
            PairSum(s.layers.pois, 400.0, kernel=False)]
    shared = SharedPairs(line, len(s.cands), asks)
    got = shared.sums(asks)
    assert shared.passes == 2  # 150 m, then 400 m for the kernel sum and the count
    for a, g in zip(asks, got, strict=True):
        assert np.array_equal(g, pair_sums(line, len(s.cands), [a])[0])


def test_the_stage_asks_the_foot_traffic_last_and_gives_the_table_of_one_pass(state, monkeypatch):
    """The foot-traffic proxy, which waits for the street centrality measured aside, is asked
    after every other criterion, the transit count and the nearby counts; the table is the
    one of measuring every criterion at once, its columns in the study's order."""
    from siteplanner import criteria

    s = state
    asked: list[str] = []
    real_proxy, real_counts = criteria.foot_traffic_proxy, pipeline.nearby_counts

    def proxy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        asked.append("foot_traffic")
        return real_proxy(*args, **kwargs)

    def counts(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        asked.append("nearby")
        return real_counts(*args, **kwargs)

    monkeypatch.setattr(criteria, "foot_traffic_proxy", proxy)
    monkeypatch.setattr(pipeline, "nearby_counts", counts)
    raw, _ = _stage(s)
    assert asked == ["nearby", "foot_traffic"]
    assert list(raw.columns) == list(s.study.criteria) and "foot_traffic" in raw
    at_once = feat.compute_criteria(s.cands, s.layers, s.study, proximity=_fresh(s))
    assert raw.equals(at_once)
