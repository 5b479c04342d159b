"""Location-allocation models: optimality on small instances, existing branches,
capacity, competitors, sparse input and the errors a planner sees."""

from __future__ import annotations

from itertools import combinations

import geopandas as gpd
import numpy as np
import pytest
import scipy.sparse as sp
from shapely.geometry import Point

from siteplanner._errors import CRSError, InputError
from siteplanner.selection import MaxCapture, MaxCoverage, PMedian, _milp


def _instance(seed: int, n_demand: int = 60, n_cand: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    demand_xy = rng.uniform(0, 1000, size=(n_demand, 2))
    cand_xy = rng.uniform(0, 1000, size=(n_cand, 2))
    cost = np.linalg.norm(demand_xy[:, None] - cand_xy[None], axis=2)
    weights = rng.integers(1, 50, size=n_demand).astype(float)
    return cost, weights


def _brute(n: int, k: int, value: object, maximize: bool) -> float:
    vals = [value(list(s)) for s in combinations(range(n), k)]  # type: ignore[operator]
    return max(vals) if maximize else min(vals)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_coverage_finds_the_best_set(seed: int) -> None:
    cost, w = _instance(seed)
    best = _brute(9, 3, lambda s: w[(cost[:, s] <= 250).any(axis=1)].sum(), True)
    for method in ("exact", "heuristic"):
        model = MaxCoverage.from_cost_matrix(cost, w, k=3, max_cost=250).solve(method)
        assert model.objective_ == pytest.approx(best) if method == "exact" else (
            model.objective_ >= 0.99 * best)
        assert model.bound_ >= best - 1e-6
        assert w[(cost[:, model.selected_] <= 250).any(axis=1)].sum() == model.objective_


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pmedian_finds_the_least_total_cost(seed: int) -> None:
    cost, w = _instance(seed)
    best = _brute(9, 3, lambda s: (w * cost[:, s].min(axis=1)).sum(), False)
    exact = PMedian.from_cost_matrix(cost, w, k=3).solve()
    assert exact.objective_ == pytest.approx(best)
    assert exact.gap_ < 1e-6
    heur = PMedian.from_cost_matrix(cost, w, k=3).solve("heuristic")
    assert heur.objective_ <= 1.01 * best
    assert heur.bound_ <= best + 1e-6


def test_pmedian_deepens_rows_beyond_the_first_levels() -> None:
    # Many candidates and k=1: the optimum serves most points far down their
    # nearest-candidate lists, so the truncated model (used on large
    # instances, forced here) must be deepened until it is exact.
    cost, w = _instance(5, n_demand=80, n_cand=40)
    best = _brute(40, 1, lambda s: (w * cost[:, s].min(axis=1)).sum(), False)
    model = PMedian.from_cost_matrix(cost, w, k=1)
    worst = np.array([int(np.argmax((w[:, None] * cost).sum(axis=0)))])
    res = _milp.solve_pmedian(model._problem, deadline=None, rel_gap=1e-9, incumbent=worst,
                              full_below=0, start_depth=1)
    assert res.optimal
    assert res.objective == pytest.approx(best)
    assert res.bound == pytest.approx(best)


def test_sparse_and_dense_costs_give_the_same_answer() -> None:
    cost, w = _instance(3)
    cut = np.where(cost <= 400, cost, np.inf)
    rows, cols = np.nonzero(np.isfinite(cut))
    sparse = sp.csr_array((cut[rows, cols], (rows, cols)), shape=cut.shape)
    dense = PMedian.from_cost_matrix(cut, w, k=3).solve()
    via_sparse = PMedian.from_cost_matrix(sparse, w, k=3).solve()
    assert via_sparse.objective_ == pytest.approx(dense.objective_)
    # Unreached points pay the cutoff (400, the largest reachable cost here).
    d = np.minimum(cut[:, dense.selected_].min(axis=1), dense.unreachable_cost)
    assert dense.objective_ == pytest.approx((w * d).sum())
    assert dense.unserved_ == pytest.approx(w[np.isinf(cut[:, dense.selected_]).all(axis=1)].sum())


def test_existing_branches_are_kept_and_new_sites_go_elsewhere() -> None:
    cost, w = _instance(4)
    existing, free = cost[:, :2], cost[:, 2:]
    alone = MaxCoverage.from_cost_matrix(free, w, k=2, max_cost=250).solve()
    with_branches = MaxCoverage.from_cost_matrix(
        free, w, k=2, max_cost=250, fixed=existing
    ).solve()
    best = _brute(7, 2, lambda s: w[((free[:, s] <= 250).any(1)) | (existing <= 250).any(1)]
                  .sum(), True)
    assert with_branches.objective_ == pytest.approx(best)
    assert with_branches.baseline_ == pytest.approx(w[(existing <= 250).any(axis=1)].sum())
    assert with_branches.objective_ >= alone.objective_
    pm = PMedian.from_cost_matrix(free, w, k=2, fixed=existing).solve()
    best_pm = _brute(7, 2, lambda s: (w * np.minimum(free[:, s].min(1), existing.min(1))).sum(),
                     False)
    assert pm.objective_ == pytest.approx(best_pm)
    assert pm.baseline_ == pytest.approx((w * existing.min(axis=1)).sum())


def test_excluded_candidates_are_never_chosen() -> None:
    cost, w = _instance(0)
    top = MaxCoverage.from_cost_matrix(cost, w, k=3, max_cost=250).solve().selected_
    for method in ("exact", "heuristic"):
        model = MaxCoverage.from_cost_matrix(cost, w, k=3, max_cost=250, exclude=top[:1])
        assert top[0] not in model.solve(method).selected_


def test_capacity_limits_what_one_site_serves() -> None:
    # Two demand clusters; the big one is next to site 0, which can only serve 10.
    cost = np.array([[1.0, 50.0, 50.0], [1.0, 50.0, 50.0], [50.0, 1.0, 50.0]])
    w = np.array([30.0, 30.0, 5.0])
    free = MaxCoverage.from_cost_matrix(cost, w, k=1, max_cost=10).solve()
    assert list(free.selected_) == [0] and free.objective_ == 60
    capped = MaxCoverage.from_cost_matrix(
        cost, w, k=1, max_cost=10, capacity=[10.0, 100.0, 100.0]
    ).solve()
    assert capped.objective_ == pytest.approx(10.0)
    pm = PMedian.from_cost_matrix(cost, w, k=2, capacity=[40.0, 100.0, 100.0]).solve()
    # 40 of the 60 go to site 0 at cost 1, the other 20 travel 50 to site 1 or 2.
    assert pm.objective_ == pytest.approx(40 * 1 + 20 * 50 + 5 * 1)
    heur = MaxCoverage.from_cost_matrix(
        cost, w, k=1, max_cost=10, capacity=[10.0, 100.0, 100.0]
    ).solve("heuristic")
    assert heur.objective_ == pytest.approx(10.0)


def test_nearest_capture_counts_ties_as_half() -> None:
    # Point 0: candidate nearer than the rival; point 1: a tie; point 2: rival nearer.
    cost = np.array([[1.0, 9.0], [5.0, 9.0], [9.0, 1.0]])
    rival = np.array([[3.0], [5.0], [4.0]])
    w = np.array([10.0, 10.0, 10.0])
    m = MaxCapture.from_cost_matrix(cost, w, k=1, competitor_cost=rival).solve()
    assert list(m.selected_) == [0] and m.objective_ == pytest.approx(15.0)
    h = MaxCapture.from_cost_matrix(cost, w, k=1, competitor_cost=rival).solve("heuristic")
    assert h.objective_ == pytest.approx(15.0)


@pytest.mark.parametrize("rule", ["nearest", "huff"])
def test_capture_finds_the_best_set_against_competitors(rule: str) -> None:
    cost, w = _instance(6, n_demand=50, n_cand=8)
    rival_cost, _ = _instance(7, n_demand=50, n_cand=3)
    mine, _ = _instance(8, n_demand=50, n_cand=1)

    def value(s: list[int]) -> float:
        if rule == "nearest":
            ours = np.minimum(cost[:, s].min(1), mine[:, 0])
            theirs = rival_cost.min(1)
            return float((w * np.where(ours < theirs, 1.0, np.where(ours == theirs, .5, 0))).sum())
        u = (np.maximum(cost[:, s], 1.0) ** -2).sum(1) + np.maximum(mine[:, 0], 1.0) ** -2
        r = (np.maximum(rival_cost, 1.0) ** -2).sum(1)
        return float((w * u / (u + r)).sum())

    best = _brute(8, 3, value, True)
    model = MaxCapture.from_cost_matrix(cost, w, k=3, competitor_cost=rival_cost, fixed=mine,
                                        rule=rule)
    exact = model.solve()
    assert exact.objective_ == pytest.approx(best, rel=1e-6)
    assert exact.objective_ == pytest.approx(value(list(exact.selected_)), rel=1e-9)
    assert exact.baseline_ < exact.objective_
    heur = MaxCapture.from_cost_matrix(cost, w, k=3, competitor_cost=rival_cost, fixed=mine,
                                       rule=rule).solve("heuristic")
    assert heur.objective_ >= 0.99 * best
    assert heur.bound_ >= best - 1e-6


def test_cover_all_is_a_service_standard() -> None:
    cost = np.array([[1.0, 8.0, 8.0], [8.0, 1.0, 8.0], [8.0, 8.0, 1.0], [2.0, 8.0, 8.0]])
    w = np.array([100.0, 1.0, 1.0, 100.0])
    m = PMedian.from_cost_matrix(cost, w, k=2, max_cost=5, cover_all=True)
    with pytest.raises(InputError, match="cover_all: no 2 sites"):
        m.solve()
    ok = PMedian.from_cost_matrix(cost, w, k=3, max_cost=5, cover_all=True).solve()
    assert sorted(ok.selected_) == [0, 1, 2]
    with pytest.raises(InputError, match=r"cover_all: 1 demand point\(s\) \(first: row 1\)"):
        PMedian.from_cost_matrix(cost, w, k=2, max_cost=5, cover_all=True, exclude=[1])


def test_from_geodataframe_uses_straight_line_distance() -> None:
    crs = "EPSG:3067"
    demand = gpd.GeoDataFrame({"people": [10, 15, 30]},
                              geometry=[Point(0, 0), Point(100, 0), Point(1000, 0)], crs=crs)
    cands = gpd.GeoDataFrame(geometry=[Point(50, 0), Point(990, 0), Point(5000, 0)], crs=crs)
    branch = gpd.GeoDataFrame(geometry=[Point(1000, 10)], crs=crs)
    cov = MaxCoverage.from_geodataframe(demand, cands, weights_col="people", k=1, max_cost=60)
    assert list(cov.solve().selected_) == [1] and cov.objective_ == 30
    cov2 = MaxCoverage.from_geodataframe(demand, cands, weights_col="people", k=1,
                                         max_cost=60, existing=branch).solve()
    assert list(cov2.selected_) == [0] and cov2.objective_ == 55
    pm = PMedian.from_geodataframe(demand, cands, weights_col="people", k=1,
                                   existing=branch).solve()
    assert list(pm.selected_) == [0]
    rivals = gpd.GeoDataFrame(geometry=[Point(1000, 5), Point(200, 0)], crs=crs)
    cap = MaxCapture.from_geodataframe(demand, cands, weights_col="people", k=1,
                                       competitors=rivals).solve()
    assert list(cap.selected_) == [0] and cap.objective_ == 25
    with pytest.raises(CRSError, match="geographic"):
        MaxCoverage.from_geodataframe(demand.to_crs(4326), cands.to_crs(4326),
                                      weights_col="people", k=1, max_cost=60)
    with pytest.raises(InputError, match="column 'pop' not found"):
        PMedian.from_geodataframe(demand, cands, weights_col="pop", k=1)


def test_time_limit_still_returns_k_sites_with_a_gap() -> None:
    cost, w = _instance(9, n_demand=400, n_cand=60)
    m = PMedian.from_cost_matrix(cost, w, k=8).solve(time_limit=0.5)
    assert len(m.selected_) == 8
    assert m.objective_ >= m.bound_ - 1e-6 * m.objective_
    assert m.runtime_ < 10


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    return _instance(0, n_demand=10, n_cand=4)


def test_k_larger_than_candidates_left(small: tuple[np.ndarray, np.ndarray]) -> None:
    cost, w = small
    with pytest.raises(InputError, match=r"k=3 is larger than the 2 candidate site\(s\) left "
                                         r"after excluding 2 of 4"):
        PMedian.from_cost_matrix(cost, w, k=3, exclude=[0, 1])
    with pytest.raises(InputError, match="k: expected a positive whole number"):
        MaxCoverage.from_cost_matrix(cost, w, k=0, max_cost=10)


def test_infeasible_capacity_names_the_constraint(small: tuple[np.ndarray, np.ndarray]) -> None:
    cost, w = small
    with pytest.raises(InputError, match=r"capacity: cover_all=True needs all .* the 2 largest"):
        PMedian.from_cost_matrix(cost, w, k=2, max_cost=2000, cover_all=True,
                                 capacity=np.full(4, 1.0))
    # Enough in total, but the only site that reaches point 0 is too small.
    reach = np.array([[1.0, np.inf], [np.inf, 1.0], [np.inf, 1.0]])
    m = PMedian.from_cost_matrix(reach, [5.0, 1.0, 1.0], k=2, max_cost=2, cover_all=True,
                                 capacity=[2.0, 50.0])
    with pytest.raises(InputError, match="cover_all: no 2 sites can serve all demand"):
        m.solve()
    # Without the service standard the 3 units site 0 cannot take pay the penalty (2).
    m = PMedian.from_cost_matrix(reach, [5.0, 1.0, 1.0], k=2, max_cost=2, capacity=[2.0, 50.0])
    assert m.solve().objective_ == pytest.approx(2 * 1 + 3 * 2 + 2 * 1)
    assert m.unserved_ == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("cost", "match"),
    [
        (np.ones((10, 4, 1)), "expected a 2-D matrix"),
        (np.ones((9, 4)), "has 9 rows but there are 10 demand points"),
        (np.where(np.eye(10, 4) > 0, np.nan, 1.0), r"cost: 4 cost\(s\) are NaN \(first at row 0"),
        (np.where(np.eye(10, 4) > 0, -1.0, 1.0), r"cost: 4 cost\(s\) are negative"),
        (sp.csr_array(np.where(np.eye(10, 4) > 0, -1.0, 1.0)), "are negative"),
    ],
)
def test_bad_cost_matrix(cost: object, match: str) -> None:
    w = np.ones(10)
    with pytest.raises(InputError, match=match):
        if np.ndim(cost) == 2 and np.shape(cost)[0] == 9:  # type: ignore[arg-type]
            PMedian.from_cost_matrix(np.ones((10, 4)), w, k=1, fixed=cost)
            return
        PMedian.from_cost_matrix(cost, w, k=1)


def test_all_zero_weights(small: tuple[np.ndarray, np.ndarray]) -> None:
    cost, _ = small
    with pytest.raises(InputError, match="weights: all demand weights are zero"):
        MaxCoverage.from_cost_matrix(cost, np.zeros(10), k=1, max_cost=100)
    with pytest.raises(InputError, match="one value per demand point"):
        MaxCoverage.from_cost_matrix(cost, np.ones(3), k=1, max_cost=100)


def test_bad_method_and_rule(small: tuple[np.ndarray, np.ndarray]) -> None:
    cost, w = small
    with pytest.raises(InputError, match="method: expected 'exact' or 'heuristic'"):
        PMedian.from_cost_matrix(cost, w, k=1).solve("fast")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="rule: expected 'nearest' or 'huff'"):
        MaxCapture.from_cost_matrix(cost, w, k=1, competitor_cost=cost[:, :1], rule="gravity")  # type: ignore[arg-type]
